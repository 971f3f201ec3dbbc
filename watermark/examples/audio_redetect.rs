//! Re-runs detection on the attacked clips `audio_harness` kept with
//! `WM_KEEP=DIR` (an experiment, not a test): per attack, TPR with the exact
//! payload, wrong payloads and the median / minimum z, so a detector change
//! can be measured without re-embedding and re-encoding.
//!
//! ```text
//! WM_KEEP=/tmp/keep cargo run --release --example audio_harness -- /tmp/wm_clips
//! cargo run --release --example audio_redetect -- /tmp/keep
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use hallmark_watermark::{audio, WatermarkKey};

/// The harness's payload and key.
const PAYLOAD: u64 = 0x89AB_CDEF;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect("usage: audio_redetect DIR");
    let key = WatermarkKey::from_secret(b"hallmark-eval-secret-0001").unwrap();
    let wrong = WatermarkKey::from_secret(b"hallmark-eval-secret-0002").unwrap();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "f32"))
        .collect();
    names.sort();
    // attack -> (n, ok, wrong payload, z values, wrong-key min p)
    let mut by: BTreeMap<String, (usize, usize, usize, Vec<f64>, f64)> = BTreeMap::new();
    let verbose = std::env::var("WM_VERBOSE").is_ok_and(|v| v == "1");
    for p in names {
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        let attack = stem.split("__").nth(1).unwrap_or("?").to_string();
        let b = std::fs::read(&p).unwrap();
        let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let rate = u(0);
        let nch = u(4) as usize;
        let vals: Vec<f32> = b[16..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let len = vals.len() / nch.max(1);
        let ch: Vec<Vec<f32>> = vals.chunks_exact(len).map(<[f32]>::to_vec).collect();
        if std::env::var("HM_NI").is_ok() {
            eprintln!("FILE {stem}");
        }
        let d = audio::detect(&ch, rate, &key);
        let w = audio::detect(&ch, rate, &wrong);
        let e = by
            .entry(attack.clone())
            .or_insert((0, 0, 0, Vec::new(), 1.0));
        e.0 += 1;
        let good = d.detected && d.payload == Some(PAYLOAD);
        e.1 += usize::from(good);
        e.2 += usize::from(d.detected && !good) + usize::from(w.detected);
        e.3.push(d.score);
        e.4 = e.4.min(w.p_value);
        if verbose {
            println!(
                "{stem} {} z={:.2} p={:.2e}",
                if good { "OK" } else { "--" },
                d.score,
                d.p_value
            );
        }
    }
    println!("| attack | n | TPR | wrong | median z | min z | wrong-key min p |");
    println!("|---|---|---|---|---|---|---|");
    for (a, (n, ok, bad, mut z, wp)) in by {
        z.sort_by(f64::total_cmp);
        println!(
            "| {a} | {n} | {:.3} ({ok}/{n}) | {bad} | {:.1} | {:.1} | {wp:.2e} |",
            ok as f64 / n as f64,
            z[z.len() / 2],
            z[0]
        );
    }
}
