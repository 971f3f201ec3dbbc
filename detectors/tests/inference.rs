//! End-to-end tests with ONNX Runtime. They need the runtime library installed by
//! `scripts/fetch-onnxruntime.sh` and the backbone unpacked by `scripts/fetch-models.sh`
//! (`make setup` does both); without them they FAIL (they do not skip).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hallmark_detectors::{
    Band, Detection, DetectorError, DetectorPool, DetectorPoolConfig, ExecutionProvider, ModelKind,
};
use hallmark_media::AudioClip;
use image::{DynamicImage, Rgb, RgbImage};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ort_lib() -> Result<PathBuf, String> {
    let p = manifest().join("../.runtime/onnxruntime/libonnxruntime.so.1.31.1");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "ONNX Runtime not found at {}: run scripts/fetch-onnxruntime.sh first",
            p.display()
        ))
    }
}

fn config_for(registry: PathBuf, capacity: usize) -> Result<DetectorPoolConfig, String> {
    Ok(DetectorPoolConfig {
        registry_path: registry,
        onnxruntime_path: ort_lib()?,
        queue_capacity: capacity,
        intra_threads: 2,
        ..DetectorPoolConfig::default()
    })
}

fn config(capacity: usize) -> Result<DetectorPoolConfig, String> {
    config_for(manifest().join("models/registry.toml"), capacity)
}

fn pool() -> Result<DetectorPool, Box<dyn std::error::Error>> {
    Ok(DetectorPool::load(&config(64)?)?)
}

/// A copy of the shipped registry in a temp dir (model files symlinked), edited by `edit`.
fn registry_variant(
    edit: impl Fn(String) -> String,
) -> Result<(tempfile::TempDir, PathBuf), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let models = manifest().join("models");
    for e in std::fs::read_dir(&models)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "onnx") {
            if let Some(name) = p.file_name() {
                std::os::unix::fs::symlink(&p, dir.path().join(name))?;
            }
        }
    }
    let text = std::fs::read_to_string(models.join("registry.toml"))?;
    let path = dir.path().join("registry.toml");
    std::fs::write(&path, edit(text))?;
    Ok((dir, path))
}

fn golden(key: &str) -> Result<(f32, f32), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(manifest().join("models/golden.json"))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let logit = v[key]["logit"]
        .as_f64()
        .ok_or(format!("golden.json lacks {key}"))?;
    let tol = v[key]["tolerance"]
        .as_f64()
        .ok_or("golden.json lacks tolerance")?;
    Ok((logit as f32, tol as f32))
}

/// The one model's logit; checks the probability and band are consistent.
fn one(d: &Detection, model: &str) -> Result<f32, String> {
    match d.models.as_slice() {
        [s] if s.model == model => {
            if !(0.0..=1.0).contains(&s.score) || d.probability != Some(s.score) {
                return Err(format!("bad probability in {d:?}"));
            }
            let want = if s.score >= s.threshold {
                Band::LikelySynthetic
            } else {
                s.band
            };
            if s.band != want || d.band != s.band {
                return Err(format!("band inconsistent in {d:?}"));
            }
            Ok(s.logit)
        }
        other => Err(format!("expected one result from {model}, got {other:?}")),
    }
}

fn pattern(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let v = |c: u32| ((3 * x + 5 * y + 71 * c + (x * y) % 17) % 256) as u8;
        Rgb([v(0), v(1), v(2)])
    }))
}

fn lcg_noise(n: usize) -> Vec<f64> {
    let mut state: u64 = 12_345;
    (0..n)
        .map(|_| {
            state = (state * 1_103_515_245 + 12_345) % (1 << 31);
            state as f64 / (1u64 << 31) as f64 * 2.0 - 1.0
        })
        .collect()
}

fn mono(rate: u32, samples: Vec<f32>) -> Arc<AudioClip> {
    Arc::new(AudioClip {
        sample_rate: rate,
        channels: vec![samples],
    })
}

fn sine_noise() -> Vec<f32> {
    let noise = lcg_noise(64_000);
    (0..64_000)
        .map(|n| {
            let s = (2.0 * std::f64::consts::PI * 440.0 * n as f64 / 16_000.0).sin();
            (0.4 * s + 0.2 * noise[n]) as f32
        })
        .collect()
}

fn voiced() -> Vec<f32> {
    let noise = lcg_noise(64_000);
    let tau = 2.0 * std::f64::consts::PI;
    (0..64_000)
        .map(|n| {
            let t = n as f64 / 16_000.0;
            let h: f64 = (1..=30)
                .filter(|&k| 105.0 * f64::from(k) < 8_000.0)
                .map(|k| f64::from(k).powf(-1.6) * (tau * 105.0 * f64::from(k) * t).sin())
                .sum();
            let env = (0.5 - 0.5 * (tau * 5.0 * t).cos()).powf(1.3);
            (0.3 * h * env + 1.5e-4 * noise[n]) as f32
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_matches_python_golden() -> TestResult {
    // Exact parity of crops + backbone + head without the JPEG step.
    let (_dir, reg) = registry_variant(|t| t.replace("jpeg_quality = 90", "jpeg_quality = 0"))?;
    let exact = DetectorPool::load(&config_for(reg, 8)?)?;
    let (want, tol) = golden("image_pattern_nojpeg")?;
    let got = one(
        &exact.score_image(Arc::new(pattern(400, 300))).await?,
        "image-clip-residual",
    )?;
    assert!((got - want).abs() <= tol, "no-JPEG logit {got} vs {want}");
    // The shipped pipeline (the image crate's JPEG encoder vs PIL's in training).
    let (want, tol) = golden("image_pattern_jpeg")?;
    let got = one(
        &pool()?.score_image(Arc::new(pattern(400, 300))).await?,
        "image-clip-residual",
    )?;
    assert!((got - want).abs() <= tol, "JPEG logit {got} vs {want}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_matches_python_golden() -> TestResult {
    let pool = pool()?;
    for (key, x) in [
        ("audio_sine_noise", sine_noise()),
        ("audio_voiced", voiced()),
    ] {
        let (want, tol) = golden(key)?;
        let got = one(
            &pool.score_audio(mono(16_000, x)).await?,
            "audio-whisper-mid",
        )?;
        assert!((got - want).abs() <= tol, "{key}: {got} vs {want}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_depend_on_the_input() -> TestResult {
    let pool = pool()?;
    let noisy = DynamicImage::ImageRgb8(RgbImage::from_fn(300, 260, |x, y| {
        let h = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) as u8;
        Rgb([h, h.wrapping_mul(3), h.wrapping_add(x as u8)])
    }));
    let a = one(
        &pool.score_image(Arc::new(pattern(400, 300))).await?,
        "image-clip-residual",
    )?;
    let b = one(
        &pool.score_image(Arc::new(noisy)).await?,
        "image-clip-residual",
    )?;
    assert!(
        (a - b).abs() > 1e-3,
        "image logits {a} and {b} should differ"
    );
    let c = one(
        &pool.score_audio(mono(16_000, voiced())).await?,
        "audio-whisper-mid",
    )?;
    let d = one(
        &pool.score_audio(mono(16_000, sine_noise())).await?,
        "audio-whisper-mid",
    )?;
    assert!(
        (c - d).abs() > 1e-3,
        "audio logits {c} and {d} should differ"
    );
    Ok(())
}

fn assert_no_signal(d: &Detection, hint: &str) {
    assert_eq!(d.band, Band::NoSignal, "{d:?}");
    assert!(d.probability.is_none(), "{d:?}");
    assert!(
        d.note.as_deref().is_some_and(|n| n.contains(hint)),
        "note should mention `{hint}`: {d:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfit_inputs_get_no_signal_never_a_score() -> TestResult {
    let pool = pool()?;
    for img in [
        DynamicImage::new_rgb8(1, 1),
        DynamicImage::new_rgba16(2000, 3),
        DynamicImage::new_luma8(17, 900),
        DynamicImage::new_rgb8(0, 0),
    ] {
        assert_no_signal(&pool.score_image(Arc::new(img)).await?, "px");
    }
    // Odd but scoreable images: small (upscaled), 16-bit + alpha, grayscale, extreme aspect.
    for img in [
        pattern(64, 64),
        DynamicImage::new_rgba16(700, 80),
        DynamicImage::new_luma8(100, 2500),
    ] {
        one(
            &pool.score_image(Arc::new(img)).await?,
            "image-clip-residual",
        )?;
    }
    // Silence, near-silence, 0.1 s, empty, NaN-only, zero sample rate.
    let silent = mono(16_000, vec![0.0; 80_000]);
    let hiss = mono(
        16_000,
        lcg_noise(80_000)
            .iter()
            .map(|v| (v * 1e-4) as f32)
            .collect(),
    );
    assert_no_signal(&pool.score_audio(silent).await?, "silent");
    assert_no_signal(&pool.score_audio(hiss).await?, "silent");
    for clip in [
        mono(16_000, voiced()[..1600].to_vec()),
        mono(16_000, vec![f32::NAN, f32::INFINITY, 0.5, -2.0]),
        Arc::new(AudioClip {
            sample_rate: 16_000,
            channels: vec![],
        }),
        Arc::new(AudioClip {
            sample_rate: 16_000,
            channels: vec![vec![], vec![]],
        }),
        mono(0, vec![0.1; 100]),
    ] {
        assert_no_signal(&pool.score_audio(clip).await?, "shorter");
    }
    // Uneven stereo at 44.1 kHz and a long 8 kHz clip are scored.
    for clip in [
        Arc::new(AudioClip {
            sample_rate: 44_100,
            channels: vec![voiced().repeat(3), vec![0.1; 1000]],
        }),
        mono(8_000, voiced().repeat(20)),
    ] {
        let l = one(&pool.score_audio(clip).await?, "audio-whisper-mid")?;
        assert!(l.is_finite());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_report_hashes_calibration_and_batches() -> TestResult {
    let cfg = DetectorPoolConfig {
        max_wait: Duration::from_millis(200),
        ..config(64)?
    };
    let pool = DetectorPool::load(&cfg)?;
    let reg = hallmark_detectors::Registry::load(&manifest().join("models/registry.toml"))?;
    let models = pool.models();
    assert_eq!(models.len(), reg.models.len());
    for (m, e) in models.iter().zip(&reg.models) {
        assert_eq!((&m.name, &m.sha256, m.kind), (&e.name, &e.sha256, e.kind));
        assert_eq!(m.provider, ExecutionProvider::Cpu);
        assert_eq!(m.calibration, e.calibration);
        assert!(m.calibration.fpr_target > 0.0 && m.calibration.fpr_target <= 0.05);
    }
    assert!(models
        .iter()
        .any(|m| m.kind == ModelKind::Image && m.backbone_sha256.is_some()));
    // Eight concurrent 4-s clips arrive within the 200 ms window: fewer batches than requests.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(async move { p.score_audio(mono(16_000, voiced())).await })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let audio = pool
        .models()
        .into_iter()
        .find(|m| m.kind == ModelKind::Audio)
        .ok_or("no audio model")?;
    assert_eq!(audio.stats.requests, 8);
    assert!(
        audio.stats.batches < 8 && audio.stats.mean_batch_rows > 1.0,
        "{:?}",
        audio.stats
    );
    assert!(audio.stats.p99_ms.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuda_request_falls_back_to_cpu() -> TestResult {
    // The PyPI onnxruntime wheel is CPU-only, so CUDA cannot register.
    let cfg = DetectorPoolConfig {
        execution_provider: ExecutionProvider::Cuda { device_id: 0 },
        ..config(4)?
    };
    let pool = DetectorPool::load(&cfg)?;
    assert!(pool
        .models()
        .iter()
        .all(|m| m.provider == ExecutionProvider::Cpu));
    one(
        &pool.score_audio(mono(16_000, voiced())).await?,
        "audio-whisper-mid",
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_is_overloaded() -> TestResult {
    let pool = DetectorPool::load(&config(1)?)?;
    let img = Arc::new(pattern(640, 480));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (pool, img) = (pool.clone(), img.clone());
            tokio::spawn(async move { pool.score_image(img).await })
        })
        .collect();
    let (mut ok, mut overloaded) = (0, 0);
    for t in tasks {
        match t.await? {
            Ok(_) => ok += 1,
            Err(DetectorError::Overloaded) => overloaded += 1,
            Err(e) => return Err(e.into()),
        }
    }
    assert!(
        ok >= 1 && overloaded >= 1,
        "ok={ok} overloaded={overloaded}"
    );
    one(
        &pool.score_audio(mono(16_000, voiced())).await?,
        "audio-whisper-mid",
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_gives_timeout() -> TestResult {
    let cfg = DetectorPoolConfig {
        timeout: Duration::from_nanos(1),
        ..config(4)?
    };
    let pool = DetectorPool::load(&cfg)?;
    let r = pool.score_audio(mono(16_000, voiced())).await;
    assert!(matches!(r, Err(DetectorError::Timeout)), "{r:?}");
    Ok(())
}

#[test]
fn a_model_file_that_is_not_onnx_is_refused_with_its_name() -> TestResult {
    let dir = tempfile::tempdir()?;
    let bogus = b"this is not an ONNX model";
    std::fs::write(dir.path().join("bogus.onnx"), bogus)?;
    let sha = hex_sha256(bogus);
    let reg = dir.path().join("registry.toml");
    std::fs::write(
        &reg,
        format!(
            r#"schema = 2
[[model]]
name = "bogus"
version = "1"
kind = "audio"
file = "bogus.onnx"
sha256 = "{sha}"
input = "audio"
input_shape = [-1, 64000]
output = "logit"
[model.preprocess]
sample_rate = 16000
window_samples = 64000
[model.calibration]
method = "platt"
a = 1.0
b = 0.0
threshold_likely_synthetic = 0.9
threshold_inconclusive = 0.5
fpr_target = 0.02
"#
        ),
    )?;
    let err = DetectorPool::load(&config_for(reg, 4)?)
        .err()
        .ok_or("a non-ONNX model file loaded")?;
    let msg = err.to_string();
    assert!(msg.contains("bogus"), "{msg}");
    Ok(())
}

fn hex_sha256(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let d = ring_digest(b);
    d.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn ring_digest(b: &[u8]) -> Vec<u8> {
    // The detectors crate depends on ring; the test reuses it through a dev path.
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .to_vec()
}
