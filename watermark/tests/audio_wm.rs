#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Audio watermark tests on deterministic synthetic speech-like signals.

use hallmark_watermark::audio::{detect, embed, AudioEmbedParams, MIN_SECONDS};
use hallmark_watermark::{WatermarkError, WatermarkKey, AUDIO_PAYLOAD_BITS, FALSE_POSITIVE_RATE};

/// Audio payloads are 32 bits (`AUDIO_PAYLOAD_BITS`).
const PAYLOAD: u64 = 0xF00D_1234;

fn key() -> WatermarkKey {
    WatermarkKey::from_secret(b"audio-test-secret-0123").unwrap()
}

/// Harmonic "syllables" with varying pitch and envelope, noise, exact-zero gaps.
fn speech(seconds: f64, fs: u32, seed: u64) -> Vec<f32> {
    let n = (seconds * f64::from(fs)) as usize;
    let mut s = seed;
    let mut rnd = || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 40) as f64 / (1u64 << 24) as f64) - 0.5
    };
    let mut out = vec![0f32; n];
    let mut phase = 0.0f64;
    for (i, o) in out.iter_mut().enumerate() {
        let t = i as f64 / f64::from(fs);
        let syl = (t / 0.25).floor();
        let within = t / 0.25 - syl;
        if (syl as u64 + seed) % 5 == 4 {
            continue; // exact digital silence
        }
        let env = (std::f64::consts::PI * within).sin().powi(2);
        let f0 = 110.0 + 40.0 * ((syl * 1.7 + seed as f64).sin()) + 15.0 * (6.0 * t).sin();
        phase += 2.0 * std::f64::consts::PI * f0 / f64::from(fs);
        let mut v = 0.0;
        for h in 1..30 {
            let fh = f0 * h as f64;
            if fh > 0.45 * f64::from(fs) {
                break;
            }
            let formant = (-((fh - 700.0 - 200.0 * syl.sin()) / 400.0).powi(2)).exp()
                + 0.5 * (-((fh - 1800.0) / 500.0).powi(2)).exp()
                + 0.05;
            v += formant * (phase * h as f64).sin() / (h as f64).sqrt();
        }
        *o = (0.25 * env * v + 0.01 * env * rnd()) as f32;
    }
    out
}

fn quantise16(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = ((*v * 32767.0).round().clamp(-32768.0, 32767.0)) / 32767.0;
    }
}

/// Perceptual-codec-like noise: in 50%-overlapped √Hann frames of 576
/// samples (an MP3 granule), every bin gets complex noise whose power is
/// `snr_db` below the signal's local power (±4 bins), then overlap-add.
fn codec_noise(x: &mut [f32], snr_db: f64, seed: u64) {
    use rustfft::{num_complex::Complex, FftPlanner};
    const M: usize = 576;
    let mut planner = FftPlanner::<f32>::new();
    let (fwd, inv) = (planner.plan_fft_forward(M), planner.plan_fft_inverse(M));
    let win: Vec<f32> = (0..M)
        .map(|n| (std::f32::consts::PI * (n as f32 + 0.5) / M as f32).sin())
        .collect();
    let g = 10f32.powf(-snr_db as f32 / 20.0);
    let mut s = seed;
    let mut u = || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let mut out = vec![0f32; x.len()];
    let mut start = 0;
    while start + M <= x.len() {
        let mut buf: Vec<Complex<f32>> = (0..M)
            .map(|i| Complex::new(x[start + i] * win[i], 0.0))
            .collect();
        fwd.process(&mut buf);
        let p: Vec<f32> = buf.iter().map(|c| c.norm_sqr()).collect();
        let mut noise = vec![Complex::new(0f32, 0f32); M];
        for k in 1..M / 2 {
            let lo = k.saturating_sub(4).max(1);
            let hi = (k + 5).min(M / 2);
            let local = p[lo..hi].iter().sum::<f32>() / (hi - lo) as f32;
            // uniform components with variance 1/12 each: scale to local power
            let a = g * (6.0 * local).sqrt();
            noise[k] = Complex::new(a * u(), a * u());
            noise[M - k] = noise[k].conj();
        }
        inv.process(&mut noise);
        for i in 0..M {
            out[start + i] += noise[i].re / M as f32 * win[i];
        }
        start += M / 2;
    }
    for (v, n) in x.iter_mut().zip(&out) {
        *v += n;
    }
}

fn shifted(x: &[f32], pad: usize) -> Vec<f32> {
    let mut v = vec![0f32; pad];
    v.extend_from_slice(x);
    v
}

#[test]
fn round_trip_16bit_shift_and_leading_silence() {
    let fs = 16_000;
    let mut ch = vec![speech(9.0, fs, 1)];
    let rep = embed(&mut ch, fs, &key(), PAYLOAD, &AudioEmbedParams::default()).unwrap();
    assert!(rep.snr_db > 20.0 && rep.snr_db < 45.0, "{rep:?}");
    assert!(rep.marked_seconds > 5.0, "{rep:?}");
    quantise16(&mut ch[0]);
    let d = detect(&ch, fs, &key());
    assert!(d.detected, "{d:?}");
    assert_eq!(d.payload, Some(PAYLOAD));
    assert!(d.p_value < FALSE_POSITIVE_RATE);
    assert!(!d.ranges.is_empty());
    assert!(d
        .ranges
        .iter()
        .all(|r| r.start_s >= 0.0 && r.end_s <= 9.0 && r.start_s < r.end_s));
    // 0.3 s of leading silence + 1234-sample shift
    let pad = 1234 + (0.3 * f64::from(fs)) as usize;
    let d = detect(&[shifted(&ch[0], pad)], fs, &key());
    assert!(d.detected, "{d:?}");
    assert_eq!(d.payload, Some(PAYLOAD));
    assert!(d
        .ranges
        .iter()
        .all(|r| r.start_s >= 0.3 && r.end_s <= 9.5 && r.start_s < r.end_s));
}

/// Codec-like distortion: noise shaped like the signal spectrum (as a
/// perceptual codec's quantisation noise is), 25 dB below it in every
/// time-frequency region, plus a codec-delay shift.
#[test]
fn noise_25db_and_codec_delay() {
    for (fs, seed) in [(22_050u32, 11u64), (44_100, 12)] {
        let mut ch = vec![speech(8.0, fs, seed)];
        embed(&mut ch, fs, &key(), PAYLOAD, &AudioEmbedParams::default()).unwrap();
        let mut y = shifted(&ch[0], 1105);
        codec_noise(&mut y, 25.0, seed);
        quantise16(&mut y);
        let d = detect(&[y], fs, &key());
        assert!(d.detected, "fs {fs}: {d:?}");
        assert_eq!(d.payload, Some(PAYLOAD));
    }
}

#[test]
fn silence_stays_silent_and_stereo() {
    let fs = 22_050;
    let a = speech(6.0, fs, 2);
    let silent = vec![0f32; a.len()];
    let mut ch = vec![a.clone(), silent];
    embed(&mut ch, fs, &key(), PAYLOAD, &AudioEmbedParams::default()).unwrap();
    assert!(ch[1].iter().all(|&v| v == 0.0));
    let zeros = a.iter().filter(|&&v| v == 0.0).count();
    assert!(zeros > fs as usize, "fixture must contain silence");
    assert!(a.iter().zip(&ch[0]).all(|(&o, &m)| o != 0.0 || m == 0.0));
    assert!(a.iter().zip(&ch[0]).any(|(&o, &m)| o != m));
    // the mono mix of (marked, silent) still carries the mark
    let d = detect(&ch, fs, &key());
    assert!(d.detected, "{d:?}");
    assert_eq!(d.payload, Some(PAYLOAD));
}

#[test]
fn clean_and_wrong_key_not_detected() {
    let wrong = WatermarkKey::from_secret(b"other-audio-secret-99").unwrap();
    for (seed, fs) in [
        (3u64, 8000u32),
        (4, 16_000),
        (5, 44_100),
        (6, 48_000),
        (8, 22_050),
        (9, 8000),
    ] {
        let x = vec![speech(7.0, fs, seed)];
        let d = detect(&x, fs, &key());
        assert!(!d.detected && d.payload.is_none());
        assert!(d.p_value >= 1e-3, "seed {seed}: {d:?}");
        let mut m = x.clone();
        embed(&mut m, fs, &key(), PAYLOAD, &AudioEmbedParams::default()).unwrap();
        let d = detect(&m, fs, &wrong);
        assert!(
            !d.detected && d.p_value >= 1e-3,
            "seed {seed} wrong key: {d:?}"
        );
    }
}

#[test]
fn too_short_and_bad_input() {
    let fs = 16_000;
    let mut ch = vec![speech(MIN_SECONDS * 0.8, fs, 7)];
    assert!(matches!(
        embed(&mut ch, fs, &key(), PAYLOAD, &AudioEmbedParams::default()),
        Err(WatermarkError::TooSmall { .. })
    ));
    assert!(detect(&ch, fs, &key()).too_small);
    let mut ok = vec![speech(6.0, 4000, 7)];
    assert!(matches!(
        embed(&mut ok, 4000, &key(), PAYLOAD, &AudioEmbedParams::default()),
        Err(WatermarkError::UnsupportedSampleRate(4000))
    ));
    let mut ok = vec![speech(6.0, fs, 7)];
    let bad = AudioEmbedParams {
        alpha: 0.0,
        ..AudioEmbedParams::default()
    };
    assert!(matches!(
        embed(&mut ok, fs, &key(), PAYLOAD, &bad),
        Err(WatermarkError::InvalidInput(_))
    ));
    let bad = AudioEmbedParams {
        min_snr_db: Some(f32::NAN),
        ..AudioEmbedParams::default()
    };
    assert!(matches!(
        embed(&mut ok, fs, &key(), PAYLOAD, &bad),
        Err(WatermarkError::InvalidInput(_))
    ));
    for level_exponent in [f32::NAN, 2.5, -3.0] {
        let bad = AudioEmbedParams {
            level_exponent,
            ..AudioEmbedParams::default()
        };
        let before = ok.clone();
        assert!(matches!(
            embed(&mut ok, fs, &key(), PAYLOAD, &bad),
            Err(WatermarkError::InvalidInput(_))
        ));
        assert_eq!(ok, before, "a refused embed leaves the samples untouched");
    }
    assert!(!detect(&[], fs, &key()).detected);
}

/// Payloads of more than [`AUDIO_PAYLOAD_BITS`] bits are refused (input left
/// untouched); the widest 32-bit payload round-trips.
#[test]
fn payload_width() {
    assert_eq!(AUDIO_PAYLOAD_BITS, 32);
    let fs = 16_000;
    let orig = vec![speech(6.0, fs, 9)];
    let mut ch = orig.clone();
    for too_wide in [1u64 << 32, u64::MAX, PAYLOAD | 1 << 40] {
        let r = embed(&mut ch, fs, &key(), too_wide, &AudioEmbedParams::default());
        assert!(
            matches!(&r, Err(WatermarkError::InvalidInput(msg)) if msg.contains("32 bits")),
            "{r:?}"
        );
    }
    assert_eq!(ch, orig);
    let max = (1u64 << AUDIO_PAYLOAD_BITS) - 1;
    embed(&mut ch, fs, &key(), max, &AudioEmbedParams::default()).unwrap();
    let d = detect(&ch, fs, &key());
    assert!(d.detected, "{d:?}");
    assert_eq!(d.payload, Some(max));
}

/// SNR ≥ 30 dB under the default masking constraint and SNR budget; an equaliser tilt
/// (pre-emphasis `y[n] = x[n] − 0.5·x[n−1]`, ≈ 3.6 dB across the band) and
/// concatenation between unmarked speech keep the mark, and the reported
/// range covers the marked part only.
#[test]
fn snr_tilt_and_concatenation() {
    let fs = 22_050u32;
    let mut ch = vec![speech(10.0, fs, 21)];
    let mut margin_only = ch.clone();
    let rep = embed(&mut ch, fs, &key(), PAYLOAD, &AudioEmbedParams::default()).unwrap();
    assert!(rep.snr_db >= 30.0, "snr {}", rep.snr_db);
    // The SNR budget only ever makes the mark louder than the margin alone,
    // and spends the headroom when there is some.
    let none = AudioEmbedParams {
        min_snr_db: None,
        ..AudioEmbedParams::default()
    };
    let rep0 = embed(&mut margin_only, fs, &key(), PAYLOAD, &none).unwrap();
    assert!(rep.snr_db <= rep0.snr_db + 1e-9, "{rep:?} vs {rep0:?}");
    if rep0.snr_db > 30.8 {
        assert!(rep.snr_db < rep0.snr_db - 0.3, "{rep:?} vs {rep0:?}");
    }
    let x = &ch[0];
    let mut tilted: Vec<f32> = (0..x.len())
        .map(|n| x[n] - 0.5 * if n > 0 { x[n - 1] } else { 0.0 })
        .collect();
    quantise16(&mut tilted);
    let d = detect(&[tilted], fs, &key());
    assert!(d.detected, "tilt: {d:?}");
    assert_eq!(d.payload, Some(PAYLOAD));
    let pad = 3 * fs as usize;
    let mut cat = speech(3.0, fs, 31);
    cat.extend_from_slice(x);
    cat.extend(speech(3.0, fs, 32));
    quantise16(&mut cat);
    let d = detect(&[cat], fs, &key());
    assert!(d.detected, "concat: {d:?}");
    assert_eq!(d.payload, Some(PAYLOAD));
    let start = d.ranges.first().map_or(0.0, |r| r.start_s);
    let end = d.ranges.last().map_or(0.0, |r| r.end_s);
    let t0 = pad as f64 / f64::from(fs);
    assert!(
        start > t0 - 1.0 && end < t0 + 11.0 && end - start > 7.0,
        "{:?}",
        d.ranges
    );
}

/// A wrong key on a long marked clip: the true key's lattice repeats every
/// block, so under a wrong key the repetitions are correlated; the
/// self-normalised pilot statistic must keep p-values calibrated (an
/// independent-symbol variance gave p ≈ 1e-10 on 30 s of corpus speech).
#[test]
fn wrong_key_on_long_marked_clip() {
    let fs = 16_000u32;
    let mut ch = vec![speech(30.0, fs, 41)];
    embed(&mut ch, fs, &key(), PAYLOAD, &AudioEmbedParams::default()).unwrap();
    let d = detect(&ch, fs, &key());
    assert!(d.detected && d.payload == Some(PAYLOAD), "{d:?}");
    for i in 0..4u32 {
        let wrong =
            WatermarkKey::from_secret(format!("another-key-{i:04}-xyz").as_bytes()).unwrap();
        let w = detect(&ch, fs, &wrong);
        assert!(!w.detected && w.p_value > 1e-3, "key {i}: {w:?}");
    }
}

/// Tempo change with the pitch kept, by WSOLA (Verhelst & Roelands 1993,
/// the method of `sox tempo`): output frames of `2·hop` samples (sin²
/// window, 50 % overlap) are read from the input near `factor ×` the output
/// position, shifted by up to ±`tol` samples to best continue the previous
/// frame's waveform. The output is `1/factor` as long.
fn wsola_tempo(x: &[f32], factor: f64, hop: usize, tol: usize) -> Vec<f32> {
    let m = 2 * hop;
    let win: Vec<f32> = (0..m)
        .map(|n| (std::f32::consts::PI * n as f32 / m as f32).sin().powi(2))
        .collect();
    let n_out = (x.len() as f64 / factor) as usize;
    let mut out = vec![0f32; n_out + m];
    let last = x.len().saturating_sub(m);
    let mut prev: Option<usize> = None;
    let mut o = 0;
    while o < n_out {
        let nominal = ((o as f64 * factor).round() as usize).min(last);
        let src = match prev {
            None => nominal,
            Some(p) => {
                let natural = (p + hop).min(last);
                let lo = nominal.saturating_sub(tol);
                let hi = (nominal + tol).min(last);
                (lo..=hi)
                    .step_by(2)
                    .map(|s| {
                        let c: f32 = (0..hop).map(|i| x[s + i] * x[natural + i]).sum();
                        (s, c)
                    })
                    .fold(
                        (nominal, f32::NEG_INFINITY),
                        |a, b| if b.1 > a.1 { b } else { a },
                    )
                    .0
            }
        };
        for i in 0..m {
            out[o + i] += x[src + i] * win[i];
        }
        prev = Some(src);
        o += hop;
    }
    out.truncate(n_out);
    out
}

/// Speed search (stage 1): a marked 12 s clip played 4 % faster and 3 %
/// slower (tempo, pitch kept) is detected with the exact payload and the
/// time-scale factor found; the same stretches of the unmarked clip are not.
#[test]
fn time_stretched_clip_is_found_by_the_speed_search() {
    let fs = 16_000;
    let clean = speech(12.0, fs, 21);
    let mut ch = vec![clean.clone()];
    embed(&mut ch, fs, &key(), PAYLOAD, &AudioEmbedParams::default()).unwrap();
    for factor in [1.04, 0.97] {
        let y = wsola_tempo(&ch[0], factor, 320, 160);
        let d = detect(&[y], fs, &key());
        assert!(d.detected, "{factor}: {d:?}");
        assert_eq!(d.payload, Some(PAYLOAD));
        let scale = d.scale.expect("scale of the stretched hypothesis");
        assert!((scale * factor - 1.0).abs() < 2e-3, "{factor}: {scale}");
        let d = detect(&[wsola_tempo(&clean, factor, 320, 160)], fs, &key());
        assert!(!d.detected && d.p_value > 1e-3, "{factor}: {d:?}");
    }
    // Unstretched: found by stage 0, no time-scale factor reported.
    let d = detect(&ch, fs, &key());
    assert!(d.detected && d.scale.is_none(), "{d:?}");
}

/// Re-marking (re-signing a signed clip): each embedding moves every symbol
/// to the new payload's lattice point (informed QIM), so three generations
/// each read back their own payload, with no special re-marking call.
#[test]
fn re_marking_audio_overwrites_the_previous_payload() {
    let fs = 16_000;
    let mut ch = vec![speech(10.0, fs, 3)];
    for payload in [0x1111_2222u64, 0x3333_4444, 0x5555_6666] {
        embed(&mut ch, fs, &key(), payload, &AudioEmbedParams::default()).unwrap();
        quantise16(&mut ch[0]);
        let d = detect(&ch, fs, &key());
        assert!(d.detected && d.payload == Some(payload), "{d:?}");
    }
}
