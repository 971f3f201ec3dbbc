//! Audio copy attack (issue 19, item 4): the mark is estimated from signed clips by several
//! methods and added, at several strengths, to another clip that was never signed; does
//! detection name a signed asset, and does the content binding (the stored audio fingerprint
//! checked on every match, `fingerprint::audio`) then attribute the forgery to it?
//!
//! ```text
//! cargo run -p hallmark-watermark --release --example audio_copy_attack -- \
//!     [--avg N] FILES…        # e.g. the links of watermark/bench/audio/real_speech.sh
//! ```
//!
//! Every readable file (mono, its own rate, first 20 s) is signed under ONE key with its own
//! payload; those whose mark reads back form the asset store (payload → fingerprint).
//! Estimates of clip `a`'s mark:
//! * `exact`: `signed − original`, the best a forger can have;
//! * `wiener`: `signed − wiener(signed)`, the residual of a spectral Wiener denoiser
//!   (32 ms √Hann frames, 50 % overlap, noise PSD = 2 × each bin's 10th-percentile power
//!   over the clip (minimum statistics, Martin 2001), gain `ξ/(1+ξ)` with
//!   `ξ = max(|X|²/N − 1, 0)`, floor 0.05);
//! * `opus16k`: `signed − opus16k(signed)`, the residual of a low-bit-rate re-encode;
//! * `avg_exact`, `avg_wiener`: the mean of the first N (`--avg`, default 8) same-rate
//!   clips' `exact` / `wiener` estimates (aligned at sample 0: every clip's blocks start
//!   there, so the pilots add coherently and the hosts do not).
//!
//! Each estimate, times a strength, is added (tiled) to the next same-rate clip's original
//! (never signed). Counted: forgeries; detected (`p < 1e-6` and CRC); named (the payload is
//! an asset of the store); attributed (named and the forgery's fingerprint matches the
//! named asset's). The `self` column adds the estimate back to its own clip's original: how
//! much mark the estimate carries (1.0 for `exact` at strength 1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use hallmark_watermark::fingerprint::audio as fp;
use hallmark_watermark::{audio, WatermarkKey};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

#[path = "audio_common/mod.rs"]
#[allow(dead_code)] // `white` is audio_binding's
mod common;
use common::{codec, Clip};

const STRENGTHS: [f32; 4] = [0.5, 1.0, 2.0, 4.0];

/// Spectral Wiener denoiser (see the module docs).
fn wiener(x: &[f32], rate: u32) -> Vec<f32> {
    let n = ((0.032 * f64::from(rate)) as usize).next_power_of_two();
    let hop = n / 2;
    let win: Vec<f32> = (0..n)
        .map(|i| (0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / n as f32).cos()).sqrt())
        .collect();
    let mut planner = FftPlanner::<f32>::new();
    let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let frames: Vec<Vec<Complex<f32>>> = (0..x.len().saturating_sub(n) / hop + 1)
        .map(|f| {
            let mut b: Vec<Complex<f32>> = (0..n)
                .map(|i| Complex::new(x.get(f * hop + i).copied().unwrap_or(0.0) * win[i], 0.0))
                .collect();
            fwd.process(&mut b);
            b
        })
        .collect();
    let noise: Vec<f32> = (0..n)
        .map(|k| {
            let mut p: Vec<f32> = frames.iter().map(|b| b[k].norm_sqr()).collect();
            p.sort_by(f32::total_cmp);
            2.0 * p[p.len() / 10] + 1e-20
        })
        .collect();
    let mut y = vec![0f32; x.len()];
    for (f, mut b) in frames.into_iter().enumerate() {
        for (k, c) in b.iter_mut().enumerate() {
            let xi = (c.norm_sqr() / noise[k] - 1.0).max(0.0);
            *c *= (xi / (1.0 + xi)).max(0.05);
        }
        inv.process(&mut b);
        for i in 0..n {
            if let Some(v) = y.get_mut(f * hop + i) {
                *v += b[i].re / n as f32 * win[i];
            }
        }
    }
    y
}

fn diff(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

fn estimate(method: &str, c: &Clip, dir: &Path) -> Option<Vec<f32>> {
    match method {
        "exact" => Some(diff(&c.signed, &c.orig)),
        "wiener" => Some(diff(&c.signed, &wiener(&c.signed, c.rate))),
        "opus16k" => {
            let y = codec(
                &c.signed,
                c.rate,
                &["-c:a", "libopus", "-b:a", "16k"],
                "ogg",
                c.rate,
                dir,
            )?;
            Some(diff(&c.signed, &y))
        }
        _ => None,
    }
}

/// Mean of the estimates of the first `n` clips of `rate`, over their common length.
fn average(method: &str, clips: &[Clip], rate: u32, n: usize, dir: &Path) -> Option<Vec<f32>> {
    let ests: Vec<Vec<f32>> = clips
        .iter()
        .filter(|c| c.rate == rate)
        .take(n)
        .filter_map(|c| estimate(method, c, dir))
        .collect();
    let len = ests.iter().map(Vec::len).min()?;
    let k = ests.len() as f32;
    Some(
        (0..len)
            .map(|i| ests.iter().map(|e| e[i]).sum::<f32>() / k)
            .collect(),
    )
}

/// `host + s·est` (the estimate tiled over the host).
fn forge(host: &[f32], est: &[f32], s: f32) -> Vec<f32> {
    host.iter()
        .enumerate()
        .map(|(i, v)| v + s * est[i % est.len()])
        .collect()
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut avg_n = 8usize;
    if let Some(i) = args.iter().position(|a| a == "--avg") {
        avg_n = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(avg_n);
        args.drain(i..(i + 2).min(args.len()));
    }
    let key = WatermarkKey::from_secret(b"hallmark-audio-copy-secret").unwrap();
    let dir = std::env::temp_dir().join(format!("hm-acopy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (clips, skipped) = common::sign_clips(&args, &key);
    println!(
        "signed clips (asset store): {}; left out: {}",
        clips.len(),
        skipped.len()
    );
    println!("| estimate | strength | forged | detected | named | attributed | self detected | forgery SNR (dB, median) |");
    println!("|---|---|---|---|---|---|---|---|");
    let methods = ["exact", "wiener", "opus16k", "avg_exact", "avg_wiener"];
    let mut total_attributed = 0;
    for m in methods {
        let ests: Vec<Option<Vec<f32>>> = clips
            .iter()
            .map(|c| match m.strip_prefix("avg_") {
                Some(base) => average(base, &clips, c.rate, avg_n, &dir),
                None => estimate(m, c, &dir),
            })
            .collect();
        for s in STRENGTHS {
            let (mut forged, mut det, mut named, mut attr, mut selfdet) = (0, 0, 0, 0, 0);
            let mut snrs = Vec::new();
            for (i, a) in clips.iter().enumerate() {
                let Some(est) = ests[i].as_ref().filter(|e| !e.is_empty()) else {
                    continue;
                };
                let own = forge(&a.orig, est, s);
                let d = audio::detect(std::slice::from_ref(&own), a.rate, &key);
                selfdet += usize::from(d.detected && d.payload == Some(a.payload));
                let Some(t) = clips
                    .iter()
                    .skip(i + 1)
                    .chain(clips.iter())
                    .find(|t| t.rate == a.rate && t.name != a.name)
                else {
                    continue;
                };
                let y = forge(&t.orig, est, s);
                forged += 1;
                let pt: f64 = t.orig.iter().map(|v| f64::from(*v).powi(2)).sum();
                let pm: f64 = y
                    .iter()
                    .zip(&t.orig)
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum();
                snrs.push(10.0 * (pt / pm.max(1e-30)).log10());
                let d = audio::detect(std::slice::from_ref(&y), t.rate, &key);
                if !d.detected {
                    continue;
                }
                det += 1;
                let Some(src) = clips.iter().find(|c| Some(c.payload) == d.payload) else {
                    continue;
                };
                named += 1;
                let cmp = fp::compare(&src.fp, &fp::candidate(&[y], t.rate, d.scale));
                if cmp.matches {
                    attr += 1;
                    eprintln!("ATTRIBUTED {m} ×{s}: {} -> {}", t.name, src.name);
                }
            }
            total_attributed += attr;
            snrs.sort_by(f64::total_cmp);
            let med = snrs.get(snrs.len() / 2).copied().unwrap_or(f64::NAN);
            println!(
                "| {m} | {s} | {forged} | {det} | {named} | {attr} | {selfdet}/{} | {med:.1} |",
                clips.len()
            );
        }
    }
    println!("attributions in all: {total_attributed}");
    let _ = std::fs::remove_dir_all(&dir);
}
