#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// Speech-like test signal: syllables of 120–250 ms with random pitch (harmonics up to
/// 3 kHz, formant-like weighting) separated by short pauses, plus a little noise (seeded).
fn speech(seconds: f64, rate: u32, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let n = (seconds * f64::from(rate)) as usize;
    let mut x = vec![0f32; n];
    let mut t = 0usize;
    while t < n {
        let len = ((0.12 + 0.13 * rnd()) * f64::from(rate)) as usize;
        let f0 = 90.0 + 160.0 * rnd();
        let formant = 400.0 + 1800.0 * rnd();
        let amp = 0.05 + 0.2 * rnd();
        for i in 0..len.min(n - t) {
            let tt = i as f64 / f64::from(rate);
            let env = (std::f64::consts::PI * i as f64 / len as f64).sin();
            let mut v = 0.0;
            let mut h = 1.0;
            while h * f0 < 3000.0 {
                let w = (-((h * f0 - formant) / 500.0).powi(2)).exp() + 0.1;
                v += w * (2.0 * std::f64::consts::PI * h * f0 * tt).sin() / h.sqrt();
                h += 1.0;
            }
            x[t + i] = (amp * env * v) as f32;
        }
        t += len + ((0.02 + 0.1 * rnd()) * f64::from(rate)) as usize;
    }
    for v in x.iter_mut() {
        *v += 0.002 * (rnd() as f32 - 0.5);
    }
    x
}

#[test]
fn fingerprint_string_round_trips_and_rejects_malformed_input() {
    let f = fingerprint(&[speech(4.0, 16000, 1)], 16000);
    assert!(f.frames() > 100);
    let back: AudioFingerprint = f.to_string().parse().unwrap();
    assert_eq!(back, f);
    let c = candidate(&[speech(4.0, 16000, 1)], 16000, Some(1.02));
    let back: AudioFingerprint = c.to_string().parse().unwrap();
    assert_eq!(back, c);
    for bad in [
        "",
        "a2:1:0:1::",
        "a1:1:3:1:AAAA:AA",
        "a1:x:0:1::",
        "a1:1:0:3::",
    ] {
        assert!(bad.parse::<AudioFingerprint>().is_err(), "{bad}");
    }
}

#[test]
fn a_noisy_resampled_excerpt_matches_and_other_speech_does_not() {
    let x = speech(12.0, 16000, 2);
    let stored = fingerprint(std::slice::from_ref(&x), 16000);
    // A 5 s excerpt starting at 3.3 s, with noise 20 dB below the signal, resampled to 8 kHz.
    let start = (3.3 * 16000.0) as usize;
    let mut part: Vec<f32> = x[start..start + 5 * 16000].to_vec();
    let p = part.iter().map(|v| v * v).sum::<f32>() / part.len() as f32;
    let mut s = 12345u64;
    for v in part.iter_mut() {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
        let u = ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5;
        *v += u * (12.0 * p / 100.0).sqrt();
    }
    let part8k = crate::dsp::resample(&part, 16000, 8000);
    let c = compare(&stored, &candidate(&[part8k], 8000, None));
    assert!(c.matches && c.distance < 0.25, "{c:?}");
    let other = candidate(&[speech(12.0, 16000, 3)], 16000, None);
    let c = compare(&stored, &other);
    assert!(!c.matches && c.distance > 0.4, "{c:?}");
}

#[test]
fn a_time_stretched_copy_matches_with_the_measured_factor() {
    let x = speech(10.0, 8000, 4);
    let stored = fingerprint(std::slice::from_ref(&x), 8000);
    // Tempo 0.95 (slower: 5 % longer) approximated by repeating every 20th 10 ms block.
    let mut y = Vec::new();
    for (i, block) in x.chunks(80).enumerate() {
        y.extend_from_slice(block);
        if i % 20 == 19 {
            y.extend_from_slice(block);
        }
    }
    let good = compare(&stored, &candidate(&[y.clone()], 8000, Some(1.05)));
    let plain = compare(&stored, &candidate(&[y], 8000, None));
    assert!(good.matches, "{good:?}");
    assert!(good.distance < plain.distance, "{good:?} vs {plain:?}");
}

#[test]
fn too_short_or_silent_audio_does_not_match() {
    let stored = fingerprint(&[speech(10.0, 8000, 5)], 8000);
    let short = candidate(&[speech(1.0, 8000, 5)], 8000, None);
    assert_eq!(compare(&stored, &short).distance, 0.5);
    let silent = candidate(&[vec![0.0; 80000]], 8000, None);
    assert!(!compare(&stored, &silent).matches);
    assert!(!compare(&stored, &candidate(&[], 8000, None)).matches);
}

#[test]
fn candidates_of_any_length_round_trip_through_their_text_form() {
    for secs in [1.0f64, 1.017, 2.5, 3.003, 5.0, 7.77] {
        let x = speech(secs, 22_050, 7);
        let f = fingerprint(std::slice::from_ref(&x), 22_050).to_string();
        for scale in [None, Some(1.05), Some(0.95)] {
            let c = candidate(std::slice::from_ref(&x), 22_050, scale);
            let text = c.to_string();
            let back: AudioFingerprint = text.parse().expect("candidate text parses");
            assert_eq!(back.frames(), c.frames(), "{secs} s, scale {scale:?}");
            let cmp = crate::fingerprint::compare_encoded(&f, &text).expect("comparable");
            if scale.is_none() && secs >= 3.0 {
                assert!(
                    cmp.matches,
                    "{secs} s: the clip must match itself: {}",
                    cmp.distance
                );
            }
        }
    }
}
