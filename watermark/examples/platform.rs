//! What platforms do to large images (issue 17): originals at full resolution (≥ 2,000 px) and
//! 1,024-px images upscaled 2×, marked and shipped as the service ships a signed JPEG (q95),
//! then fitted within 1080 px and within 720 px and re-encoded as JPEG (q85 / q80), or halved
//! and re-encoded at q85. Prints per-image misses, and per transform the detection rate with
//! its Wilson 95 % interval, a diagnostic ("at signed size": detected once the transformed
//! image is resized back to the signed size, i.e. with synchronisation given, so a miss there
//! lost its signal, not its geometry), and the detections on the *unsigned* originals under
//! the same transforms (false positives; each under `--keys` keys). See watermark/README.md.
//!
//! ```text
//! cargo run -p hallmark-watermark --release --example platform -- [--jobs 2] [--keys 4] \
//!     [--upscale FILES...] [--] FILES...
//! ```
//!
//! Files after `--upscale` (up to `--`) are upscaled 2× (Lanczos3) before marking; the rest
//! are used as they are. Each image is signed as the service signs it: the default mark
//! shipped at q95, and if that JPEG does not read back, the service's stronger attempts in
//! order (`image_attempts` in api/src/service/sign.rs: strength and low-activity cap ×1.6 at
//! q97, ×2.5 at q98, ×2.5 with a 1-code-value flat floor at q98); the attempt used is printed
//! when it is not the first. `--legacy-scale` marks with the integer scale `⌊long side / 1000⌋`
//! (1–8) of the marks signed before `mark_scale` became `long side / 720`, to check that the
//! current detector still finds them. The PSNR of each mark (8-bit RGB, against the original)
//! is printed per group. Transforms use ImageMagick `convert` (`-resize WxH>` fits within a
//! box and never enlarges; the default filter, Lanczos for downscaling).
// Offline harness over trusted local files: plain `image::open` and unwrap are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use hallmark_watermark::{image as wm, WatermarkKey};
use image::DynamicImage;

const PAYLOAD: u64 = 0x0123_4567_89AB_CDEF;
const SECRET: &[u8] = b"hallmark-bench-secret-0001";

/// (row name, ImageMagick arguments applied to the shipped file).
const TRANSFORMS: &[(&str, &[&str])] = &[
    (
        "fit 1080 px + JPEG q85",
        &["-resize", "1080x1080>", "-quality", "85"],
    ),
    (
        "fit 1080 px + JPEG q80",
        &["-resize", "1080x1080>", "-quality", "80"],
    ),
    (
        "fit 720 px + JPEG q85",
        &["-resize", "720x720>", "-quality", "85"],
    ),
    (
        "fit 720 px + JPEG q80",
        &["-resize", "720x720>", "-quality", "80"],
    ),
    ("50 % + JPEG q85", &["-resize", "50%", "-quality", "85"]),
];

/// The service's image signing attempts (api/src/service/sign.rs `image_attempts`, with
/// `signing.jpeg_quality` = 95): parameters and the JPEG quality shipped.
fn sign_attempts() -> Vec<(wm::ImageEmbedParams, u8)> {
    let d = wm::ImageEmbedParams::default();
    let stronger = |f: f32, min_psnr_db: f32, flat_floor: f32| wm::ImageEmbedParams {
        strength: d.strength * f,
        grain_cap: d.grain_cap * f,
        min_psnr_db,
        flat_floor,
        ..wm::ImageEmbedParams::default()
    };
    vec![
        (d.clone(), 95),
        (stronger(1.6, 40.0, 0.0), 97),
        (stronger(2.5, 38.5, 0.0), 98),
        (stronger(2.5, 38.5, 1.0), 98),
    ]
}

struct Input {
    path: String,
    upscale: bool,
}

/// The mark's scale of earlier versions: `⌊long side / 1000⌋` clamped to 1–8.
fn legacy_scale(w: u32, h: u32) -> f64 {
    f64::from((w.max(h) / 1000).clamp(1, 8))
}

/// PSNR (dB) of `b` against `a`, 8-bit RGB.
fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let se: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&p, &q)| (f64::from(p) - f64::from(q)).powi(2))
        .sum();
    10.0 * (255.0f64.powi(2) / (se / a.as_raw().len() as f64).max(1e-12)).log10()
}

/// One (image, transform) outcome.
struct Row {
    transform: usize,
    hit: bool,
    /// Detected once the transformed image is resized back to the signed size (Lanczos3):
    /// synchronisation given for free, so a miss here means the mark's signal is gone.
    oracle_hit: bool,
    clean_detections: usize,
    clean_runs: usize,
    /// PSNR of the mark (dB).
    psnr: f64,
}

fn convert(src: &Path, args: &[&str], dst: &Path) -> DynamicImage {
    let ok = Command::new("convert")
        .arg(src)
        .args(args)
        .arg(dst)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "convert {args:?} failed (is ImageMagick installed?)");
    image::open(dst).unwrap()
}

fn save_jpeg(img: &DynamicImage, path: &Path, quality: u8) {
    let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(f, quality);
    img.to_rgb8().write_with_encoder(enc).unwrap();
}

/// Wilson score interval (95 %) of `k` successes in `n` trials.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, p, z) = (n as f64, k as f64 / n as f64, 1.959_964);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

fn process(
    idx: usize,
    input: &Input,
    key: &WatermarkKey,
    clean_keys: &[WatermarkKey],
    legacy: bool,
) -> Vec<Row> {
    let dir = std::env::temp_dir().join(format!("wm-platform-{}-{idx}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let Ok(mut orig) = image::open(&input.path) else {
        eprintln!("skip (unreadable): {}", input.path);
        return Vec::new();
    };
    if input.upscale {
        let (w, h) = (orig.width() * 2, orig.height() * 2);
        orig = orig.resize_exact(w, h, image::imageops::FilterType::Lanczos3);
    }
    let orig = DynamicImage::ImageRgb8(orig.to_rgb8());
    // Shipped as the service ships a signed JPEG (the `image` crate's encoder at
    // signing.jpeg_quality = 95, stronger attempts at 97 / 98 while the shipped file does
    // not read back); the unsigned original goes through the encoder at q95.
    let shipped = dir.join("shipped.jpg");
    let unsigned = dir.join("unsigned.jpg");
    let attempts = sign_attempts();
    let mut signed = None;
    for (i, (params, quality)) in attempts.iter().enumerate() {
        let params = wm::ImageEmbedParams {
            mark_scale: legacy.then(|| legacy_scale(orig.width(), orig.height())),
            ..params.clone()
        };
        let marked = wm::embed(&orig, key, PAYLOAD, &params).unwrap();
        save_jpeg(&marked, &shipped, *quality);
        let back = wm::detect(&image::open(&shipped).unwrap(), key);
        if back.detected && back.payload == Some(PAYLOAD) {
            signed = Some((i, marked));
            break;
        }
    }
    save_jpeg(&orig, &unsigned, 95);
    let Some((attempt, marked)) = signed else {
        println!(
            "{}: no signing attempt reads back (the service answers media_too_small)",
            input.path
        );
        std::fs::remove_dir_all(&dir).ok();
        return Vec::new();
    };
    let psnr = psnr(&orig, &marked);
    let mut line = format!(
        "{}{} {}x{} PSNR {psnr:.2} dB{}",
        input.path,
        if input.upscale { " (2x)" } else { "" },
        orig.width(),
        orig.height(),
        if attempt > 0 {
            format!(" (signing attempt {} of {})", attempt + 1, attempts.len())
        } else {
            String::new()
        }
    );
    let mut rows = Vec::new();
    for (t, (name, args)) in TRANSFORMS.iter().enumerate() {
        let att = convert(&shipped, args, &dir.join("att.jpg"));
        let d = wm::detect(&att, key);
        let hit = d.detected && d.payload == Some(PAYLOAD);
        let oracle_hit = hit || {
            let back = att.resize_exact(
                orig.width(),
                orig.height(),
                image::imageops::FilterType::Lanczos3,
            );
            let o = wm::detect(&back, key);
            o.detected && o.payload == Some(PAYLOAD)
        };
        if !hit {
            line += &format!(
                " | MISS {name} ({}x{}): z={:.2} p={:.1e} s={:.3}{}",
                att.width(),
                att.height(),
                d.score,
                d.p_value,
                d.scale.unwrap_or(0.0),
                if oracle_hit {
                    " (found at the signed size)"
                } else {
                    ""
                }
            );
        }
        let clean = convert(&unsigned, args, &dir.join("clean.jpg"));
        let clean_detections = std::iter::once(key)
            .chain(clean_keys)
            .filter(|k| wm::detect(&clean, k).detected)
            .count();
        if clean_detections > 0 {
            line += &format!(" | FALSE POSITIVE {name}: {clean_detections}");
        }
        rows.push(Row {
            transform: t,
            hit,
            oracle_hit,
            clean_detections,
            clean_runs: 1 + clean_keys.len(),
            psnr,
        });
    }
    println!("{line}");
    std::fs::remove_dir_all(&dir).ok();
    rows
}

fn main() {
    let mut jobs = 2usize;
    let mut keys = 4usize;
    let mut inputs: Vec<Input> = Vec::new();
    let mut upscale = false;
    let mut legacy = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--jobs" => jobs = args.next().and_then(|v| v.parse().ok()).unwrap_or(2),
            "--keys" => keys = args.next().and_then(|v| v.parse().ok()).unwrap_or(4),
            "--upscale" => upscale = true,
            "--legacy-scale" => legacy = true,
            "--" => upscale = false,
            _ => inputs.push(Input { path: a, upscale }),
        }
    }
    let key = WatermarkKey::from_secret(SECRET).unwrap();
    // The harness key plus `keys − 1` others for the unsigned originals.
    let clean_keys: Vec<WatermarkKey> = (1..keys.max(1))
        .map(|i| {
            WatermarkKey::from_secret(format!("hallmark-clean-key-{i:04}").as_bytes()).unwrap()
        })
        .collect();
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<(bool, Row)>> = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..jobs.max(1) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(input) = inputs.get(i) else { break };
                let out = process(i, input, &key, &clean_keys, legacy);
                rows.lock()
                    .unwrap()
                    .extend(out.into_iter().map(|r| (input.upscale, r)));
            });
        }
    });
    let rows = rows.into_inner().unwrap();
    if legacy {
        println!("\nmarks of the earlier scale floor(long side / 1000), current detector");
    }
    for group in [false, true] {
        // One PSNR per image (every transform row of an image carries the same one).
        let p: Vec<f64> = rows
            .iter()
            .filter(|(g, r)| *g == group && r.transform == 0)
            .map(|(_, r)| r.psnr)
            .collect();
        if !p.is_empty() {
            println!(
                "PSNR {}: mean {:.2} dB, min {:.2} dB over {} images",
                if group {
                    "2x upscales"
                } else {
                    "full resolution"
                },
                p.iter().sum::<f64>() / p.len() as f64,
                p.iter().copied().fold(f64::INFINITY, f64::min),
                p.len()
            );
        }
    }
    println!(
        "\n{:<24} {:<19} {:>9} {:>6} {:>15} {:>13} {:>15}",
        "transform",
        "originals",
        "detected",
        "rate",
        "Wilson 95% CI",
        "at signed size",
        "clean detected"
    );
    for group in [false, true] {
        for (t, (name, _)) in TRANSFORMS.iter().enumerate() {
            let sel: Vec<&Row> = rows
                .iter()
                .filter(|(g, r)| *g == group && r.transform == t)
                .map(|(_, r)| r)
                .collect();
            if sel.is_empty() {
                continue;
            }
            let (n, k) = (sel.len(), sel.iter().filter(|r| r.hit).count());
            let (lo, hi) = wilson(k, n);
            let oracle = sel.iter().filter(|r| r.oracle_hit).count();
            let fp: usize = sel.iter().map(|r| r.clean_detections).sum();
            let runs: usize = sel.iter().map(|r| r.clean_runs).sum();
            println!(
                "{name:<24} {:<19} {:>9} {:>6.3} {:>15} {:>13} {:>15}",
                if group {
                    "2x upscales"
                } else {
                    "full resolution"
                },
                format!("{k}/{n}"),
                k as f64 / n as f64,
                format!("[{lo:.3}, {hi:.3}]"),
                format!("{oracle}/{n}"),
                format!("{fp}/{runs}")
            );
        }
    }
}
