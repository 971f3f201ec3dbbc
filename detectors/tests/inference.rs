//! End-to-end tests with ONNX Runtime. They need the runtime library installed by
//! `scripts/fetch-onnxruntime.sh`; without it they FAIL (they do not skip).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hallmark_detectors::{
    DetectorError, DetectorPool, DetectorPoolConfig, DetectorScore, ExecutionProvider, ModelKind,
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

fn config(capacity: usize) -> Result<DetectorPoolConfig, String> {
    Ok(DetectorPoolConfig {
        registry_path: manifest().join("models/registry.toml"),
        onnxruntime_path: ort_lib()?,
        queue_capacity: capacity,
        ..DetectorPoolConfig::default()
    })
}

fn pool() -> Result<DetectorPool, Box<dyn std::error::Error>> {
    Ok(DetectorPool::load(&config(64)?)?)
}

fn golden(key: &str) -> Result<(f32, f32), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(manifest().join("models/golden.json"))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let score = v[key]["score"]
        .as_f64()
        .ok_or(format!("golden.json lacks {key}"))?;
    let tol = v["tolerance"]
        .as_f64()
        .ok_or("golden.json lacks tolerance")?;
    Ok((score as f32, tol as f32))
}

fn one(scores: &[DetectorScore], model: &str) -> Result<f32, String> {
    match scores {
        [s] if s.model == model => {
            if (0.0..=1.0).contains(&s.score) {
                Ok(s.score)
            } else {
                Err(format!("score {} outside [0, 1]", s.score))
            }
        }
        other => Err(format!("expected one score from {model}, got {other:?}")),
    }
}

fn pattern_image() -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(256, 256, |x, y| {
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

fn mono16k(samples: Vec<f32>) -> Arc<AudioClip> {
    Arc::new(AudioClip {
        sample_rate: 16_000,
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
    let pool = pool()?;
    for (key, img) in [
        ("image_pattern_u8", pattern_image()),
        (
            "image_flat_gray_128",
            DynamicImage::ImageRgb8(RgbImage::from_pixel(256, 256, Rgb([128; 3]))),
        ),
    ] {
        let (want, tol) = golden(key)?;
        let got = one(&pool.score_image(Arc::new(img)).await?, "image-residual")?;
        assert!(
            (got - want).abs() <= tol,
            "{key}: rust {got} vs python {want}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_matches_python_golden() -> TestResult {
    let pool = pool()?;
    for (key, x) in [
        ("audio_voiced", voiced()),
        ("audio_sine_noise", sine_noise()),
        ("audio_silence", vec![0.0; 64_000]),
    ] {
        let (want, tol) = golden(key)?;
        let got = one(&pool.score_audio(mono16k(x)).await?, "audio-spectral")?;
        assert!(
            (got - want).abs() <= tol,
            "{key}: rust {got} vs python {want}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_depend_on_the_input() -> TestResult {
    let pool = pool()?;
    let noisy = DynamicImage::ImageRgb8(RgbImage::from_fn(300, 200, |x, y| {
        let h = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) as u8;
        Rgb([h, h.wrapping_mul(3), h.wrapping_add(x as u8)])
    }));
    let a = one(
        &pool.score_image(Arc::new(pattern_image())).await?,
        "image-residual",
    )?;
    let b = one(&pool.score_image(Arc::new(noisy)).await?, "image-residual")?;
    assert!(
        (a - b).abs() > 1e-3,
        "image scores {a} and {b} should differ"
    );

    let c = one(
        &pool.score_audio(mono16k(voiced())).await?,
        "audio-spectral",
    )?;
    let d = one(
        &pool.score_audio(mono16k(sine_noise())).await?,
        "audio-spectral",
    )?;
    assert!(
        (c - d).abs() > 1e-3,
        "audio scores {c} and {d} should differ"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_inputs_never_panic() -> TestResult {
    let pool = pool()?;
    // Tiny, huge-aspect, 16-bit + alpha, grayscale images all score.
    for img in [
        DynamicImage::new_rgb8(1, 1),
        DynamicImage::new_rgba16(2000, 3),
        DynamicImage::new_luma8(17, 900),
    ] {
        one(&pool.score_image(Arc::new(img)).await?, "image-residual")?;
    }
    let empty = pool
        .score_image(Arc::new(DynamicImage::new_rgb8(0, 0)))
        .await;
    assert!(
        matches!(empty, Err(DetectorError::InvalidInput(_))),
        "{empty:?}"
    );

    // NaN/inf samples, 1-sample clip, uneven stereo at 44.1 kHz, long 8 kHz clip.
    let nan = vec![f32::NAN, f32::INFINITY, 0.5, -2.0];
    let stereo = AudioClip {
        sample_rate: 44_100,
        channels: vec![voiced().repeat(3), vec![0.1; 1000]],
    };
    let long = AudioClip {
        sample_rate: 8_000,
        channels: vec![voiced().repeat(20)],
    };
    for clip in [
        AudioClip {
            sample_rate: 16_000,
            channels: vec![nan],
        },
        AudioClip {
            sample_rate: 22_050,
            channels: vec![vec![0.3]],
        },
        stereo,
        long,
    ] {
        let s = one(&pool.score_audio(Arc::new(clip)).await?, "audio-spectral")?;
        assert!(s.is_finite());
    }
    for clip in [
        AudioClip {
            sample_rate: 16_000,
            channels: vec![],
        },
        AudioClip {
            sample_rate: 16_000,
            channels: vec![vec![], vec![]],
        },
        AudioClip {
            sample_rate: 0,
            channels: vec![vec![0.1; 100]],
        },
    ] {
        let r = pool.score_audio(Arc::new(clip)).await;
        assert!(matches!(r, Err(DetectorError::InvalidInput(_))), "{r:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_report_hash_and_provider() -> TestResult {
    let pool = pool()?;
    let models = pool.models();
    assert_eq!(models.len(), 2);
    let reg = hallmark_detectors::Registry::load(&manifest().join("models/registry.toml"))?;
    for (m, e) in models.iter().zip(&reg.models) {
        assert_eq!((&m.name, &m.sha256, m.kind), (&e.name, &e.sha256, e.kind));
        assert_eq!(m.provider, ExecutionProvider::Cpu);
    }
    assert!(models.iter().any(|m| m.kind == ModelKind::Audio));
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
        &pool.score_image(Arc::new(pattern_image())).await?,
        "image-residual",
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_is_overloaded() -> TestResult {
    let pool = DetectorPool::load(&config(1)?)?;
    // A large image keeps the worker busy (conversion + resize) while requests pile up.
    let big = Arc::new(DynamicImage::new_rgb8(4000, 4000));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (pool, big) = (pool.clone(), big.clone());
            tokio::spawn(async move { pool.score_image(big).await })
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
    // The pool keeps working afterwards.
    one(
        &pool.score_image(Arc::new(pattern_image())).await?,
        "image-residual",
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
    let r = pool.score_audio(mono16k(voiced())).await;
    assert!(matches!(r, Err(DetectorError::Timeout)), "{r:?}");
    Ok(())
}
