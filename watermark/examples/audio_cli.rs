//! Embed into / detect in one audio file (for manual attack experiments). Needs `sox`.
//!
//! ```text
//! cargo run -p hallmark-watermark --release --example audio_cli -- embed in.wav out.wav
//! cargo run -p hallmark-watermark --release --example audio_cli -- detect in.wav
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use hallmark_watermark::{audio, WatermarkKey};

const PAYLOAD: u64 = 0x89AB_CDEF;

fn read(path: &Path) -> (Vec<Vec<f32>>, u32) {
    let info = |flag: &str| -> u32 {
        let o = Command::new("soxi").arg(flag).arg(path).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    let (rate, nch) = (info("-r"), info("-c") as usize);
    let o = Command::new("sox")
        .arg(path)
        .args(["-t", "raw", "-e", "floating-point", "-b", "32", "-L", "-"])
        .output()
        .unwrap();
    let mut ch = vec![Vec::new(); nch];
    for (i, b) in o.stdout.chunks_exact(4).enumerate() {
        ch[i % nch].push(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    }
    (ch, rate)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let key = WatermarkKey::from_secret(b"hallmark-eval-secret-0001").unwrap();
    match (args.first().map(String::as_str), args.get(1), args.get(2)) {
        (Some("embed"), Some(i), Some(o)) => {
            let (mut ch, rate) = read(Path::new(i));
            let rep = audio::embed(&mut ch, rate, &key, PAYLOAD, &Default::default()).unwrap();
            let mut bytes = Vec::new();
            for n in 0..ch[0].len() {
                for c in &ch {
                    bytes.extend_from_slice(&c[n].to_le_bytes());
                }
            }
            let raw = format!("{o}.raw");
            std::fs::write(&raw, bytes).unwrap();
            let (r, c) = (rate.to_string(), ch.len().to_string());
            let st = Command::new("sox")
                .args([
                    "-t",
                    "raw",
                    "-e",
                    "floating-point",
                    "-b",
                    "32",
                    "-L",
                    "-r",
                    &r,
                    "-c",
                    &c,
                ])
                .arg(&raw)
                .args(["-D", "-b", "16", o])
                .status()
                .unwrap();
            let _ = std::fs::remove_file(&raw);
            println!(
                "snr={:.2} dB marked={:.1} s sox={st}",
                rep.snr_db, rep.marked_seconds
            );
        }
        (Some("detect"), Some(i), _) => {
            let (ch, rate) = read(Path::new(i));
            let t = std::time::Instant::now();
            let (d, acc) = audio::detect_eval(&ch, rate, &key, PAYLOAD);
            println!(
                "detected={} ok={} z={:.2} p={:.2e} acc={:.3} ranges={:?} t={:.3}s",
                d.detected,
                d.payload == Some(PAYLOAD),
                d.score,
                d.p_value,
                acc.unwrap_or(0.0),
                d.ranges
                    .iter()
                    .map(|r| (r.start_s, r.end_s))
                    .collect::<Vec<_>>(),
                t.elapsed().as_secs_f64()
            );
        }
        _ => eprintln!("usage: audio_cli embed IN OUT | detect IN"),
    }
}
