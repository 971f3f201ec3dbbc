#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::{decode_audio, encode_wav, sniff};

/// A 440 Hz tone (channel c at amplitude 0.3 / (c + 1)).
fn tone(rate: u32, seconds: f64, channels: usize) -> AudioClip {
    let n = (f64::from(rate) * seconds) as usize;
    AudioClip {
        sample_rate: rate,
        channels: (0..channels)
            .map(|c| {
                (0..n)
                    .map(|i| {
                        let t = i as f64 / f64::from(rate);
                        (0.3 / (c + 1) as f64 * (std::f64::consts::TAU * 440.0 * t).sin()) as f32
                    })
                    .collect()
            })
            .collect(),
    }
}

/// `clip` encoded by ffmpeg's libopus encoder into a file of extension `ext`.
fn ffmpeg_opus(clip: &AudioClip, ext: &str, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (
        dir.path().join("in.wav"),
        dir.path().join(format!("out.{ext}")),
    );
    std::fs::write(&src, encode_wav(clip).unwrap()).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&src)
        .args(["-c:a", "libopus", "-b:a", "64k"])
        .args(extra)
        .arg("-y")
        .arg(&dst)
        .output()
        .expect("ffmpeg is required by this test (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dst).unwrap()
}

/// Amplitude and phase (rad) of the 440 Hz component of `x` at 48 kHz, over whole samples.
fn tone_at_48k(x: &[f32]) -> (f64, f64) {
    let (mut s, mut c) = (0.0, 0.0);
    // Skip the first and last 50 ms (codec onset and end).
    let range = 2_400..x.len() - 2_400;
    let n = range.len() as f64;
    for i in range {
        let w = std::f64::consts::TAU * 440.0 * i as f64 / 48_000.0;
        s += f64::from(x[i]) * w.sin();
        c += f64::from(x[i]) * w.cos();
    }
    ((2.0 * s / n).hypot(2.0 * c / n), c.atan2(s))
}

#[test]
fn ogg_and_webm_opus_decode_at_48k_with_pre_skip_and_end_trim() {
    let clip = tone(48_000, 1.0, 2);
    for ext in ["ogg", "webm"] {
        let bytes = ffmpeg_opus(&clip, ext, &[]);
        let format = sniff(&bytes).unwrap();
        assert_eq!(format.mime(), format!("audio/{ext}"));
        let back = decode_audio(&bytes, format, &Limits::default()).unwrap();
        assert_eq!(back.sample_rate, 48_000, "{ext}");
        assert_eq!(back.channels.len(), 2, "{ext}");
        // Pre-skip dropped and end padding trimmed: exactly the input's duration.
        assert_eq!(back.frames(), 48_000, "{ext}");
        for (c, want) in [(0, 0.3), (1, 0.15)] {
            let (amp, phase) = tone_at_48k(&back.channels[c]);
            assert!(
                (amp - want).abs() < 0.03,
                "{ext} channel {c}: amplitude {amp}"
            );
            // Misaligned by the 312-sample pre-skip, the phase would be off by 5.4 rad.
            assert!(phase.abs() < 0.15, "{ext} channel {c}: phase {phase}");
        }
    }
}

#[test]
fn mono_and_surround_mappings_decode() {
    let mono = ffmpeg_opus(&tone(16_000, 0.5, 1), "ogg", &[]);
    let back = decode_audio(&mono, MediaFormat::Ogg, &Limits::default()).unwrap();
    assert_eq!((back.channels.len(), back.frames()), (1, 24_000));
    // 5.1 is channel mapping family 1: four streams, two coupled.
    let surround = tone(48_000, 0.5, 6);
    for ext in ["ogg", "webm"] {
        let bytes = ffmpeg_opus(&surround, ext, &["-ac", "6"]);
        let back = decode_audio(&bytes, sniff(&bytes).unwrap(), &Limits::default()).unwrap();
        assert_eq!(back.channels.len(), 6, "{ext}");
        assert!(
            (back.frames() as i64 - 24_000).abs() <= 960,
            "{ext}: {}",
            back.frames()
        );
    }
}

#[test]
fn opus_limits_apply() {
    let bytes = ffmpeg_opus(&tone(48_000, 2.0, 2), "webm", &[]);
    for limits in [
        Limits {
            max_channels: 1,
            ..Limits::default()
        },
        Limits {
            max_audio_seconds: 1.0,
            ..Limits::default()
        },
    ] {
        for (b, f) in [
            (&bytes, MediaFormat::Webm),
            (
                &ffmpeg_opus(&tone(48_000, 2.0, 2), "ogg", &[]),
                MediaFormat::Ogg,
            ),
        ] {
            assert!(
                matches!(
                    decode_audio(b, f, &limits),
                    Err(MediaError::LimitExceeded(_))
                ),
                "{f:?} {limits:?}"
            );
        }
    }
}

#[test]
fn truncated_and_damaged_opus_decode_what_is_there_or_fail_cleanly() {
    let clip = tone(48_000, 2.0, 1);
    for ext in ["ogg", "webm"] {
        let bytes = ffmpeg_opus(&clip, ext, &[]);
        let format = sniff(&bytes).unwrap();
        // Cut in half: about the first second decodes (the end-of-stream page or block is gone).
        let half = decode_audio(&bytes[..bytes.len() / 2], format, &Limits::default()).unwrap();
        assert!(
            (36_000..=60_000).contains(&half.frames()),
            "{ext}: {}",
            half.frames()
        );
        // Damaged payload bytes: a clip or a clear error, never a panic.
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..50 {
            let mut bad = bytes.clone();
            for _ in 0..8 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let at = 200 + (rng as usize) % (bad.len() - 200);
                bad[at] ^= (rng >> 32) as u8 | 1;
            }
            match decode_audio(&bad, format, &Limits::default()) {
                Ok(c) => assert!(c.frames() <= 2 * 96_000, "{ext}"),
                // decode_audio turns a caught panic into this message: none may happen here.
                Err(MediaError::Corrupt { detail, .. }) => {
                    assert_ne!(detail, "the decoder rejected the stream", "{ext}")
                }
                Err(_) => {}
            }
        }
    }
    assert!(matches!(
        decode_audio(
            b"\x1A\x45\xDF\xA3garbage",
            MediaFormat::Webm,
            &Limits::default()
        ),
        Err(MediaError::Corrupt { .. })
    ));
}

#[test]
fn opus_heads_are_checked() {
    let head = |channels: u8, family: u8, table: &[u8]| {
        let mut h = b"OpusHead\x01".to_vec();
        h.push(channels);
        h.extend_from_slice(&312u16.to_le_bytes());
        h.extend_from_slice(&48_000u32.to_le_bytes());
        h.extend_from_slice(&0i16.to_le_bytes());
        h.push(family);
        h.extend_from_slice(table);
        h
    };
    let ok = parse_head(&head(2, 0, &[]), MediaFormat::Ogg).unwrap();
    assert_eq!(
        (ok.channels, ok.pre_skip, ok.streams, ok.coupled),
        (2, 312, 1, 1)
    );
    assert_eq!(ok.mapping, vec![0, 1]);
    let surround = parse_head(&head(3, 1, &[2, 1, 0, 2, 1]), MediaFormat::Ogg).unwrap();
    assert_eq!((surround.streams, surround.coupled), (2, 1));
    for (bad, want) in [
        (head(3, 0, &[]), "family 0"),
        (head(0, 0, &[]), "0 channels"),
        (head(2, 1, &[1, 0, 0, 5]), "does not exist"),
        (head(2, 1, &[0, 0, 0, 0]), "stream counts"),
        (head(4, 1, &[2, 2]), "cut short"),
        (b"OpusHead".to_vec(), "shorter"),
    ] {
        let err = parse_head(&bad, MediaFormat::Ogg).unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(matches!(
        parse_head(&head(2, 3, &[1, 1, 0, 1]), MediaFormat::Ogg),
        Err(MediaError::Unsupported { .. })
    ));
}
