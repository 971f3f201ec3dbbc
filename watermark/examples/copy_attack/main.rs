//! Copy-attack harness: does a watermark estimated from signed images attribute unrelated
//! real photos, before and after the content-fingerprint check? And does every genuine
//! attacked copy that the image harness detects still match its asset?
//!
//! ```text
//! cargo run -p hallmark-watermark --release --example copy_attack -- \
//!     [--corpus ../shared/corpus/media] [--max-side 1024] [--jobs 2] [--parts genuine,impostor,copy]
//! ```
//!
//! Signed sources: the corpus's synthetic images (what a provider signs), each marked with its
//! own random payload under ONE key; their marks and fingerprints form the "asset store".
//! Targets: the corpus's real photos, never signed. See watermark/README.md, "Content binding".

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod attacks;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use attacks::{Rng, ATTACKS, DENOISERS};
use hallmark_watermark::fingerprint::image::{self as fp, ImageFingerprint};
use hallmark_watermark::{image as wm, WatermarkKey};
use image::{DynamicImage, RgbImage};

const SECRET: &[u8] = b"hallmark-copy-attack-secret-01";
const STRENGTHS_DB: [f64; 3] = [52.0, 46.0, 40.0];

struct Config {
    corpus: PathBuf,
    max_side: u32,
    jobs: usize,
    parts: Vec<String>,
}

fn parse_args() -> Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut c = Config {
        corpus: root.join("../shared/corpus/media"),
        max_side: 1024,
        jobs: 2,
        parts: vec!["genuine".into(), "impostor".into(), "copy".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--corpus" => c.corpus = it.next().map(PathBuf::from).unwrap_or(c.corpus),
            "--max-side" => c.max_side = it.next().and_then(|v| v.parse().ok()).unwrap_or(1024),
            "--jobs" => c.jobs = it.next().and_then(|v| v.parse().ok()).unwrap_or(2),
            "--parts" => {
                c.parts = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(String::from)
                    .collect()
            }
            other => panic!("unknown argument {other}"),
        }
    }
    c
}

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

struct Signed {
    name: String,
    payload: u64,
    img: RgbImage,
    fp: ImageFingerprint,
}

fn name_of(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Marks every loadable image with its own payload; keeps those whose mark reads back.
fn sign_all(paths: &[String], key: &WatermarkKey, max_side: u32, salt: u64) -> Vec<Signed> {
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let Some(img) = attacks::load(p, Some(max_side)) else {
            continue;
        };
        let payload = Rng(salt ^ ((i as u64 + 1) * 0x9E37_79B9_7F4A_7C15))
            .next_f64()
            .to_bits()
            | 1;
        let marked = wm::embed(
            &DynamicImage::ImageRgb8(img),
            key,
            payload,
            &Default::default(),
        );
        let Ok(marked) = marked else { continue };
        let marked = marked.to_rgb8();
        let d = wm::detect(&DynamicImage::ImageRgb8(marked.clone()), key);
        if d.payload != Some(payload) {
            eprintln!("{}: mark not read back after signing; skipped", name_of(p));
            continue;
        }
        let fp = fp::fingerprint(&DynamicImage::ImageRgb8(marked.clone())).unwrap();
        out.push(Signed {
            name: name_of(p),
            payload,
            img: marked,
            fp,
        });
    }
    out
}

fn par_map<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let next = Mutex::new(0usize);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                if i >= items.len() {
                    break;
                }
                let r = f(i, &items[i]);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut r = results.into_inner().unwrap();
    r.sort_by_key(|(i, _)| *i);
    r.into_iter().map(|(_, r)| r).collect()
}

fn candidate(img: &RgbImage, d: &hallmark_watermark::Detection) -> ImageFingerprint {
    fp::fingerprint(&DynamicImage::ImageRgb8(img.clone()))
        .unwrap()
        .with_geometry(d.scale, d.rotation_deg)
}

/// Part 1: every genuine attacked copy that is detected must match its own asset.
fn genuine(signed: &[Signed], key: &WatermarkKey, jobs: usize) {
    println!("\n## Genuine attacked copies (detected → content match)");
    println!(
        "{:<24} {:>6} {:>9} {:>8} {:>9} {:>9}",
        "attack", "images", "detected", "matched", "max dist", "mean dist"
    );
    let rows = par_map(ATTACKS, jobs, |ai, &(name, kind)| {
        let dir = tempdir(&format!("gen{ai}"));
        let (mut det, mut mat, mut dists) = (0, 0, Vec::new());
        for (i, s) in signed.iter().enumerate() {
            let a = attacks::apply(kind, &s.img, &dir, 1000 + i as u64 * 31 + ai as u64);
            let d = wm::detect(&DynamicImage::ImageRgb8(a.clone()), key);
            if d.payload != Some(s.payload) {
                continue;
            }
            det += 1;
            let c = fp::compare(&s.fp, &candidate(&a, &d));
            if c.matches {
                mat += 1;
            } else {
                eprintln!(
                    "MISS {name} {}: distance {:.3} scale {:?} rot {:?}",
                    s.name, c.distance, d.scale, d.rotation_deg
                );
            }
            dists.push(c.distance);
        }
        let _ = std::fs::remove_dir_all(&dir);
        (name, det, mat, dists)
    });
    let mut all = Vec::new();
    for (name, det, mat, dists) in rows {
        let max = dists.iter().cloned().fold(0f64, f64::max);
        let mean = dists.iter().sum::<f64>() / dists.len().max(1) as f64;
        println!(
            "{name:<24} {:>6} {det:>9} {mat:>8} {max:>9.3} {mean:>9.3}",
            signed.len()
        );
        all.extend(dists);
    }
    summary("genuine distances", &mut all);
}

fn summary(what: &str, v: &mut [f64]) {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return;
    }
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!(
        "{what}: n = {}, min {:.3}, 1% {:.3}, 50% {:.3}, 99% {:.3}, max {:.3}",
        v.len(),
        q(0.0),
        q(0.01),
        q(0.5),
        q(0.99),
        q(1.0)
    );
}

/// Part 2: unsigned real photos (at the geometries a forger could make the detector report)
/// against every stored fingerprint.
fn impostor(signed: &[Signed], targets: &[(String, RgbImage)], jobs: usize) {
    println!("\n## Different content (real photo vs every signed asset)");
    let geoms = [(1.0, 0.0), (0.5, 0.0)];
    let rows = par_map(targets, jobs, |_, (tn, t)| {
        let base = fp::fingerprint(&DynamicImage::ImageRgb8(t.clone())).unwrap();
        let mut v = Vec::new();
        for s in signed.iter().filter(|s| &s.name != tn) {
            for &(sc, rot) in &geoms {
                let c = fp::compare(&s.fp, &base.clone().with_geometry(Some(sc), Some(rot)));
                v.push((c.distance, format!("{tn} vs {} @ {sc}x {rot}°", s.name)));
            }
        }
        v
    });
    let mut all: Vec<(f64, String)> = rows.into_iter().flatten().collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (d, what) in all.iter().take(20) {
        println!("closest: {d:.3} {what}");
    }
    let below = all.iter().filter(|(d, _)| *d <= fp::MAX_DISTANCE).count();
    println!(
        "pairs at or below the threshold {:.2}: {below} of {}",
        fp::MAX_DISTANCE,
        all.len()
    );
    let mut d: Vec<f64> = all.into_iter().map(|(d, _)| d).collect();
    summary("different-content distances", &mut d);
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hm-copy-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Residual `Y − denoise(Y)` of a signed image (the attacker's estimate of the mark).
fn residual(img: &RgbImage, d: attacks::Denoiser) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let y = attacks::luma(img);
    let dn = attacks::denoise(&y, w, h, d);
    y.iter().zip(&dn).map(|(a, b)| a - b).collect()
}

/// The residual folded modulo the 128-px tile from the origin, normalised to unit RMS (the
/// attacker knows the mark is periodic: its autocorrelation shows the period).
fn fold(res: &[f32], w: usize, h: usize) -> Vec<f32> {
    let t = wm::TILE;
    let mut f = vec![0f32; t * t];
    for y in 0..h {
        for x in 0..w {
            f[(y % t) * t + x % t] += res[y * w + x];
        }
    }
    let rms = (f.iter().map(|v| v * v).sum::<f32>() / f.len() as f32)
        .sqrt()
        .max(1e-6);
    f.iter().map(|v| v / rms).collect()
}

#[derive(Default)]
struct Tally {
    forged: usize,
    detected: usize,
    named: usize,
    attributed: usize,
}

/// Part 3: copy and averaging attacks onto never-signed real photos.
fn copy(signed: &[Signed], targets: &[(String, RgbImage)], key: &WatermarkKey, jobs: usize) {
    println!(
        "\n## Copy attack onto never-signed real photos ({} targets)",
        targets.len()
    );
    let by_payload: HashMap<u64, usize> = signed
        .iter()
        .enumerate()
        .map(|(i, s)| (s.payload, i))
        .collect();
    // Averaging attack: the mean of the folded residuals of every signed source.
    let folds: Vec<Vec<f32>> = signed
        .iter()
        .map(|s| {
            fold(
                &residual(&s.img, attacks::Denoiser::Wiener5),
                s.img.width() as usize,
                s.img.height() as usize,
            )
        })
        .collect();
    let t = wm::TILE;
    let mut avg = vec![0f32; t * t];
    for f in &folds {
        for (a, v) in avg.iter_mut().zip(f) {
            *a += v / folds.len() as f32;
        }
    }
    let tallies = par_map(targets, jobs, |j, (tn, tgt)| {
        let src = &signed[j % signed.len()];
        let (sw, sh) = (src.img.width() as usize, src.img.height() as usize);
        let mut out: Vec<(String, Tally)> = Vec::new();
        let mut run = |label: String, delta: &dyn Fn(usize, usize) -> f32| {
            let mut tl = Tally::default();
            for db in STRENGTHS_DB {
                let forged = attacks::add_scaled(tgt, delta, db);
                tl.forged += 1;
                let d = wm::detect(&DynamicImage::ImageRgb8(forged.clone()), key);
                if !d.detected {
                    continue;
                }
                tl.detected += 1;
                let Some(&ai) = d.payload.and_then(|p| by_payload.get(&p)) else {
                    continue;
                };
                tl.named += 1;
                let c = fp::compare(&signed[ai].fp, &candidate(&forged, &d));
                if c.matches {
                    tl.attributed += 1;
                    eprintln!(
                        "ATTRIBUTED {label} {db} dB: {tn} -> {} (distance {:.3})",
                        signed[ai].name, c.distance
                    );
                }
            }
            out.push((label, tl));
        };
        for dn in DENOISERS {
            let res = residual(&src.img, dn);
            run(format!("{dn:?} plain"), &|x, y| res[(y % sh) * sw + x % sw]);
            let f = fold(&res, sw, sh);
            run(format!("{dn:?} tile-folded"), &|x, y| {
                f[(y % t) * t + x % t]
            });
        }
        run(format!("average of {}", signed.len()), &|x, y| {
            avg[(y % t) * t + x % t]
        });
        let own = &folds[j % folds.len()];
        run("average + one source".into(), &|x, y| {
            avg[(y % t) * t + x % t] + own[(y % t) * t + x % t]
        });
        out
    });
    let mut sum: Vec<(String, Tally)> = Vec::new();
    for rows in tallies {
        for (label, tl) in rows {
            match sum.iter_mut().find(|(l, _)| *l == label) {
                Some((_, s)) => {
                    s.forged += tl.forged;
                    s.detected += tl.detected;
                    s.named += tl.named;
                    s.attributed += tl.attributed;
                }
                None => sum.push((label, tl)),
            }
        }
    }
    println!("strengths {STRENGTHS_DB:?} dB PSNR each; 'named' = detected with a signed asset's payload (= attributed before the content check)");
    println!(
        "{:<28} {:>7} {:>9} {:>7} {:>11}",
        "estimate", "forged", "detected", "named", "attributed"
    );
    for (label, s) in &sum {
        println!(
            "{label:<28} {:>7} {:>9} {:>7} {:>11}",
            s.forged, s.detected, s.named, s.attributed
        );
    }
}

fn main() {
    let cfg = parse_args();
    let key = WatermarkKey::from_secret(SECRET).unwrap();
    let real = list(&cfg.corpus.join("images/real"));
    let synth = list(&cfg.corpus.join("images/synthetic"));
    let signed = sign_all(&synth, &key, cfg.max_side, 0x5157);
    println!(
        "signed sources: {} synthetic images (max side {})",
        signed.len(),
        cfg.max_side
    );
    let targets: Vec<(String, RgbImage)> = real
        .iter()
        .filter_map(|p| attacks::load(p, Some(cfg.max_side)).map(|i| (name_of(p), i)))
        .collect();
    println!("real photos (never signed as targets): {}", targets.len());
    let wants = |part: &str| cfg.parts.iter().any(|p| p == part);
    // The image harness's set: the real photos, each signed with its own payload (genuine
    // copies; as stored assets, also the "different content" of every other real photo).
    let mut all: Vec<Signed> = Vec::new();
    if wants("genuine") || wants("impostor") {
        all = sign_all(&real, &key, cfg.max_side, 0xA11CE);
        println!(
            "also signed: {} real photos (genuine copies / stored assets)",
            all.len()
        );
        all.extend(signed.iter().map(|s| Signed {
            name: s.name.clone(),
            payload: s.payload,
            img: s.img.clone(),
            fp: s.fp.clone(),
        }));
    }
    if wants("genuine") {
        genuine(&all, &key, cfg.jobs);
    }
    if wants("impostor") {
        impostor(&all, &targets, cfg.jobs);
    }
    if cfg.parts.iter().any(|p| p == "copy") {
        copy(&signed, &targets, &key, cfg.jobs);
    }
}
