//! Pool throughput against a raw ONNX Runtime session on the same model and batch size, in one
//! run, plus the batching curve at 1/4/8/16 rows.
//!
//! ```sh
//! cargo run -p hallmark-detectors --example pool_bench [-- SECONDS_PER_POINT]
//! ```
//!
//! * raw: one `ort::Session` of the shipped audio model, fed ready-made `[B, 64000]` tensors in
//!   a loop (no preprocessing, no queue) — the ceiling.
//! * pool: the `DetectorPool` with `max_batch = B`, fed 4-s clips (one window each) from
//!   2·B concurrent callers; preprocessing (mixdown, windowing), queueing, batching and the
//!   calibration are included.
//! * image: the same for the CLIP image model (5 crops per image; the pool also pays the
//!   canonical JPEG re-encode and cropping, the raw session does not).
//!
//! Both use the same intra-op thread count. Prints rows/s and the pool/raw ratio.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_detectors::{DetectorPool, DetectorPoolConfig, ModelKind, Registry};
use hallmark_media::AudioClip;
use ort::session::Session;
use ort::value::TensorRef;

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn voiced(n: usize, seed: f64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = i as f64 / 16_000.0;
            let h: f64 = (1..=20)
                .map(|k| {
                    (k as f64).powf(-1.5)
                        * (std::f64::consts::TAU * (110.0 + seed) * k as f64 * t).sin()
                })
                .sum();
            (0.2 * h * (0.5 - 0.5 * (std::f64::consts::TAU * 3.0 * t).cos())) as f32
        })
        .collect()
}

fn raw_rows_per_s(
    session: &mut Session,
    input: &str,
    row: &[usize],
    b: usize,
    secs: f64,
) -> R<f64> {
    let len: usize = row.iter().product();
    let data: Vec<f32> = (0..b * len)
        .map(|i| ((i % 97) as f32 / 97.0) - 0.5)
        .collect();
    let mut dims = vec![b];
    dims.extend_from_slice(row);
    let start = Instant::now();
    let mut rows = 0usize;
    while start.elapsed().as_secs_f64() < secs {
        let t = TensorRef::from_array_view((dims.clone(), data.as_slice()))?;
        let _ = session.run(ort::inputs![input => t])?;
        rows += b;
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

async fn pool_audio_rows_per_s(pool: &DetectorPool, b: usize, secs: f64) -> R<f64> {
    let clips: Vec<Arc<AudioClip>> = (0..2 * b)
        .map(|i| {
            Arc::new(AudioClip {
                sample_rate: 16_000,
                channels: vec![voiced(64_000, i as f64)],
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let tasks: Vec<_> = clips
        .into_iter()
        .map(|c| {
            let p = pool.clone();
            tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < deadline {
                    if p.score_audio(c.clone()).await.is_ok() {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let mut rows = 0;
    for t in tasks {
        rows += t.await?;
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

fn config(root: &Path, b: usize) -> DetectorPoolConfig {
    DetectorPoolConfig {
        registry_path: root.join("detectors/models/registry.toml"),
        onnxruntime_path: root.join(".runtime/onnxruntime/libonnxruntime.so.1.31.1"),
        queue_capacity: 256,
        intra_threads: 2,
        max_batch: b,
        max_wait: Duration::from_millis(5),
        ..DetectorPoolConfig::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> R<()> {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reg = Registry::load(&root.join("detectors/models/registry.toml"))?;
    let env = hallmark_detectors::init_runtime(
        &root.join(".runtime/onnxruntime/libonnxruntime.so.1.31.1"),
    )?;
    let audio = reg
        .models
        .iter()
        .find(|m| m.kind == ModelKind::Audio)
        .ok_or("no audio model")?;
    let bytes = audio.read_verified(&reg.path)?;
    let mut raw = Session::builder(&env)?
        .with_intra_threads(2)?
        .with_inter_threads(1)?
        .commit_from_memory(&bytes)?;
    println!(
        "audio model `{}`, {secs} s per point, 2 intra-op threads",
        audio.name
    );
    println!("| batch | raw session rows/s | pool rows/s | pool / raw |");
    println!("|---|---|---|---|");
    for b in [1usize, 4, 8, 16] {
        let r = raw_rows_per_s(&mut raw, &audio.input, &[64_000], b, secs)?;
        let pool = DetectorPool::load(&config(&root, b))?;
        let p = pool_audio_rows_per_s(&pool, b, secs).await?;
        println!("| {b} | {r:.1} | {p:.1} | {:.2} |", p / r);
    }
    if let Some(img) = reg.models.iter().find(|m| m.kind == ModelKind::Image) {
        if let Some(bb) = &img.backbone {
            let bbytes = hallmark_detectors::registry::read_verified(
                &img.name, &bb.file, &bb.sha256, &reg.path,
            )?;
            let mut s = Session::builder(&env)?
                .with_intra_threads(2)?
                .with_inter_threads(1)?
                .commit_from_memory(&bbytes)?;
            println!("\nimage backbone (CLIP ViT-B/16 INT8), raw session, crops/s:");
            println!("| batch | crops/s |");
            println!("|---|---|");
            for b in [1usize, 4, 8, 16] {
                let r = raw_rows_per_s(&mut s, &bb.input, &[3, 224, 224], b, secs)?;
                println!("| {b} | {r:.2} |");
            }
        }
        let pool = DetectorPool::load(&config(&root, 10))?;
        let imgs: Vec<_> = (0..4)
            .map(|i| {
                Arc::new(image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(
                    640,
                    480,
                    move |x, y| image::Rgb([(x * 3 + i) as u8, (y * 5) as u8, ((x ^ y) + i) as u8]),
                )))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs_f64(secs * 2.0);
        let start = Instant::now();
        let tasks: Vec<_> = imgs
            .into_iter()
            .map(|im| {
                let p = pool.clone();
                tokio::spawn(async move {
                    let mut n = 0usize;
                    while Instant::now() < deadline {
                        if p.score_image(im.clone()).await.is_ok() {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        let mut n = 0;
        for t in tasks {
            n += t.await?;
        }
        let el = start.elapsed().as_secs_f64();
        println!(
            "\nimage pool, 640x480 images (5 crops each, max_batch 10, 4 callers): {:.2} images/s = {:.2} crops/s (preprocessing included)",
            n as f64 / el,
            5.0 * n as f64 / el
        );
    }
    Ok(())
}
