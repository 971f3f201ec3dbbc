//! Speed and memory of the text-to-speech path, synthesis only (no watermark, no signing):
//! real-time factor (seconds of audio per second of wall-clock; "× real time") and peak
//! resident memory, for a one-sentence text, a paragraph and a 5,000-character text.
//!
//! ```text
//! nice cargo build --release -p hallmark-generators --example tts_bench
//! target/release/examples/tts_bench [--voice NAME] [--registry PATH] [--ort PATH] [--runs N]
//! ```
//!
//! Prints one line per text: characters, sentences, audio seconds, wall seconds (median of
//! `--runs`, default 3), RTF, and the process's peak RSS so far (`VmHWM`, Linux). The
//! reference (issue 21): aim ≥ 5× real time on the 2-core development machine, and the peak
//! RSS of the 5,000-character text within a few hundred MB (it grows with the output clip,
//! 4 bytes per sample, not with the model's activations: one sentence at a time).

use std::path::PathBuf;
use std::time::Instant;

use hallmark_generators::{GeneratorConfig, GeneratorRegistry, SpeechRequest};

/// Harvard sentences, lists 3 and 4 (not the lists the intelligibility script scores).
const SENTENCES: [&str; 20] = [
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.",
    "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.",
    "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.",
    "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.",
    "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.",
    "What joy there is in living.",
];

fn text_of(chars: usize) -> String {
    let mut t = String::new();
    for s in SENTENCES.iter().cycle() {
        if t.len() + s.len() + 1 > chars {
            break;
        }
        if !t.is_empty() {
            t.push(' ');
        }
        t.push_str(s);
    }
    t
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut voice = "en_US-joe-medium".to_string();
    let mut cfg = GeneratorConfig::default();
    let mut runs = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--voice" => voice = val()?,
            "--registry" => cfg.registry_path = PathBuf::from(val()?),
            "--ort" => cfg.onnxruntime_path = PathBuf::from(val()?),
            "--runs" => runs = val()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let t = Instant::now();
    let reg = GeneratorRegistry::load(&cfg)?;
    println!(
        "loaded {} in {:.2} s; peak RSS {:.0} MB; threads {}",
        cfg.registry_path.display(),
        t.elapsed().as_secs_f64(),
        peak_rss_mb(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Warm-up (first-run allocations).
    reg.synthesize(&SpeechRequest {
        generator: voice.clone(),
        text: SENTENCES[0].into(),
        speed: 1.0,
    })?;
    println!("text\tchars\taudio_s\twall_s\trtf_x\tpeak_rss_mb");
    for (label, text, n) in [
        ("sentence", SENTENCES[1].to_string(), runs),
        ("paragraph", text_of(800), runs),
        ("5000chars", text_of(5000), 1),
    ] {
        let mut walls = Vec::new();
        let mut audio = 0.0;
        for _ in 0..n.max(1) {
            let t = Instant::now();
            let s = reg.synthesize(&SpeechRequest {
                generator: voice.clone(),
                text: text.clone(),
                speed: 1.0,
            })?;
            walls.push(t.elapsed().as_secs_f64());
            audio = s.samples.len() as f64 / f64::from(s.sample_rate);
        }
        walls.sort_by(f64::total_cmp);
        let wall = walls[walls.len() / 2];
        println!(
            "{label}\t{}\t{audio:.1}\t{wall:.2}\t{:.2}\t{:.0}",
            text.chars().count(),
            audio / wall,
            peak_rss_mb()
        );
    }
    println!("reference: aim >= 5x real time (rtf_x) on the 2-core dev machine (issue 21)");
    Ok(())
}
