//! Audio content binding on real speech: genuine attacked copies vs their stored
//! fingerprint, different clips against each other, and the copy attack (the exact mark of a
//! signed clip, `signed − original`, added to another, never-signed clip).
//!
//! ```text
//! cargo run -p hallmark-watermark --release --example audio_binding -- /work/shared/corpus/media/audio/real/*.wav
//! ```
//! Needs `ffmpeg` (libmp3lame, libopus, aac). Clips are cut to their first 20 s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hallmark_watermark::fingerprint::audio as fp;

#[path = "audio_common/mod.rs"]
mod common;
use common::{codec, white};
use hallmark_watermark::{audio, WatermarkKey};

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let key = WatermarkKey::from_secret(b"hallmark-audio-binding-secret").unwrap();
    let dir = std::env::temp_dir().join(format!("hm-abind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (clips, skipped) = common::sign_clips(&files, &key);
    for (why, f) in &skipped {
        println!("skipped: {f}: {why}");
    }
    println!("signed clips: {}", clips.len());
    type Attack = (
        &'static str,
        Box<dyn Fn(&[f32], u32) -> Option<(Vec<f32>, u32)>>,
    );
    let d2 = dir.clone();
    let d3 = dir.clone();
    let d4 = dir.clone();
    let d5 = dir.clone();
    let d6 = dir.clone();
    let attacks: Vec<Attack> = vec![
        ("wav", Box::new(|x: &[f32], r| Some((x.to_vec(), r)))),
        (
            "mp3 64k",
            Box::new(move |x: &[f32], r| {
                codec(x, r, &["-c:a", "libmp3lame", "-b:a", "64k"], "mp3", r, &d2).map(|y| (y, r))
            }),
        ),
        (
            "opus 32k",
            Box::new(move |x: &[f32], r| {
                codec(x, r, &["-c:a", "libopus", "-b:a", "32k"], "ogg", r, &d3).map(|y| (y, r))
            }),
        ),
        (
            "aac 64k",
            Box::new(move |x: &[f32], r| {
                codec(x, r, &["-c:a", "aac", "-b:a", "64k"], "m4a", r, &d4).map(|y| (y, r))
            }),
        ),
        (
            "phone 8k",
            Box::new(move |x: &[f32], r| {
                codec(
                    x,
                    r,
                    &["-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000"],
                    "wav",
                    8000,
                    &d5,
                )
                .map(|y| (y, 8000))
            }),
        ),
        (
            "tempo 1.05",
            Box::new(move |x: &[f32], r| {
                codec(x, r, &["-af", "atempo=1.05"], "wav", r, &d6).map(|y| (y, r))
            }),
        ),
        (
            "white 20 dB",
            Box::new(|x: &[f32], r| Some((white(x, 20.0, 7), r))),
        ),
        (
            "trim 5 s",
            Box::new(|x: &[f32], r| {
                let s = (r as usize * 3).min(x.len());
                Some((x[s..(s + r as usize * 5).min(x.len())].to_vec(), r))
            }),
        ),
    ];
    println!(
        "{:<12} {:>6} {:>9} {:>8} {:>8}",
        "attack", "clips", "detected", "matched", "max BER"
    );
    let mut all = Vec::new();
    for (name, f) in &attacks {
        let (mut det, mut mat, mut max) = (0, 0, 0f64);
        for c in &clips {
            let Some((y, r)) = f(&c.signed, c.rate) else {
                continue;
            };
            let d = audio::detect(std::slice::from_ref(&y), r, &key);
            if d.payload != Some(c.payload) {
                continue;
            }
            det += 1;
            let cmp = fp::compare(&c.fp, &fp::candidate(&[y], r, d.scale));
            if cmp.matches {
                mat += 1;
            } else {
                eprintln!("MISS {name} {}: BER {:.3}", c.name, cmp.distance);
            }
            max = max.max(cmp.distance);
            all.push(cmp.distance);
        }
        println!("{name:<12} {:>6} {det:>9} {mat:>8} {max:>8.3}", clips.len());
    }
    // Different clips, and the copy attack with the exact mark.
    let (mut min_diff, mut forged, mut detected, mut named, mut attributed) = (1f64, 0, 0, 0, 0);
    for (i, a) in clips.iter().enumerate() {
        for (j, b) in clips.iter().enumerate() {
            if i == j {
                continue;
            }
            let c = fp::compare(
                &a.fp,
                &fp::candidate(std::slice::from_ref(&b.orig), b.rate, None),
            );
            min_diff = min_diff.min(c.distance);
        }
        // Copy: a's exact mark onto the next clip of the same rate.
        let Some(t) = clips
            .iter()
            .skip(i + 1)
            .chain(clips.iter())
            .find(|t| t.rate == a.rate && t.name != a.name)
        else {
            continue;
        };
        let y: Vec<f32> = t
            .orig
            .iter()
            .enumerate()
            .map(|(k, v)| v + (a.signed[k % a.signed.len()] - a.orig[k % a.orig.len()]))
            .collect();
        forged += 1;
        let d = audio::detect(std::slice::from_ref(&y), t.rate, &key);
        if !d.detected {
            continue;
        }
        detected += 1;
        if let Some(src) = clips.iter().find(|c| Some(c.payload) == d.payload) {
            named += 1;
            if fp::compare(&src.fp, &fp::candidate(&[y], t.rate, d.scale)).matches {
                attributed += 1;
                eprintln!("ATTRIBUTED {} -> {}", t.name, src.name);
            }
        }
    }
    println!(
        "different clips: smallest BER {min_diff:.3} (threshold {})",
        fp::MAX_BER
    );
    println!("copy attack (exact mark onto another clip): forged {forged}, detected {detected}, named {named}, attributed {attributed}");
    let _ = std::fs::remove_dir_all(&dir);
}
