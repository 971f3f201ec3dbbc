//! End-to-end tests with ONNX Runtime. They need the runtime library installed by
//! `scripts/fetch-onnxruntime.sh`; without it they FAIL (they do not skip).

use std::path::PathBuf;

use hallmark_generators::{
    seed_to_latent, GenerateRequest, GeneratorConfig, GeneratorError, GeneratorRegistry, MAX_SIZE,
    MIN_SIZE,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

fn registry() -> Result<GeneratorRegistry, Box<dyn std::error::Error>> {
    let cfg = GeneratorConfig {
        registry_path: manifest().join("models/registry.toml"),
        onnxruntime_path: ort_lib()?,
    };
    Ok(GeneratorRegistry::load(&cfg)?)
}

fn req(seed: u64, width: u32, height: u32) -> GenerateRequest {
    GenerateRequest {
        generator: "cppn-abstract".into(),
        seed,
        width,
        height,
    }
}

/// Generates and returns the raw RGB8 bytes, checking the metadata on the way.
fn rgb_bytes(reg: &GeneratorRegistry, r: &GenerateRequest) -> Result<Vec<u8>, GeneratorError> {
    let out = reg.generate_image(r)?;
    assert_eq!(out.model, "cppn-abstract");
    assert_eq!(out.version, "1");
    let image::DynamicImage::ImageRgb8(rgb) = out.image else {
        return Err(GeneratorError::InvalidRequest("not Rgb8".into()));
    };
    assert_eq!(rgb.dimensions(), (r.width, r.height));
    Ok(rgb.into_raw())
}

#[derive(serde::Deserialize)]
struct Golden {
    generator: String,
    seed: u64,
    width: u32,
    height: u32,
    latent: Vec<f32>,
    mean_rgb: [f64; 3],
    tolerance: f64,
}

fn golden() -> Result<Golden, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(manifest().join("models/golden.json"))?;
    Ok(serde_json::from_str(&text)?)
}

#[test]
fn lists_the_builtin_generator() -> TestResult {
    let reg = registry()?;
    let list = reg.list();
    let names: Vec<&str> = list.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["cppn-abstract", "dcgan-faces", "en_US-joe-medium"]);
    assert!(list[0].available && list[1].available);
    assert_eq!(list[0].name, "cppn-abstract");
    assert_eq!(list[0].version, "1");
    assert_eq!(list[0].kind, "image");
    assert!(list[0].description.contains("Stanley 2007"));
    let json = serde_json::to_value(&list[0])?;
    assert_eq!(json["name"], "cppn-abstract");
    Ok(())
}

#[test]
fn seed_mapping_matches_python() -> TestResult {
    let g = golden()?;
    let latent = seed_to_latent(g.seed, g.latent.len());
    for (a, b) in latent.iter().zip(&g.latent) {
        assert!((a - b).abs() <= 1e-6, "latent {a} vs python {b}");
    }
    // Prefix-stable and odd lengths work.
    assert_eq!(seed_to_latent(g.seed, 5)[..], latent[..5]);
    assert!(seed_to_latent(7, 0).is_empty());
    Ok(())
}

#[test]
fn golden_parity_with_python_onnxruntime() -> TestResult {
    let g = golden()?;
    let reg = registry()?;
    let rgb = reg.render_latent(&g.generator, &seed_to_latent(g.seed, 16), g.width, g.height)?;
    assert_eq!(rgb.len(), (g.width * g.height * 3) as usize);
    let n = f64::from(g.width * g.height);
    for (c, want) in g.mean_rgb.iter().enumerate() {
        let mean = rgb
            .iter()
            .skip(c)
            .step_by(3)
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / n;
        assert!(
            (mean - want).abs() <= g.tolerance,
            "channel {c}: rust {mean} vs python {want}"
        );
        eprintln!("channel {c}: |rust - python| = {:.2e}", (mean - want).abs());
    }
    // The quantised image agrees too (rounding moves the mean by far less than 1/255).
    let bytes = rgb_bytes(&reg, &req(g.seed, g.width, g.height))?;
    for c in 0..3 {
        let m = bytes
            .iter()
            .skip(c)
            .step_by(3)
            .map(|&b| f64::from(b))
            .sum::<f64>()
            / n
            / 255.0;
        assert!((m - g.mean_rgb[c]).abs() < 1e-3, "u8 channel {c}: {m}");
    }
    Ok(())
}

#[test]
fn same_seed_same_pixels_also_across_threads() -> TestResult {
    let reg = registry()?;
    let first = rgb_bytes(&reg, &req(1234, 96, 80))?;
    assert_eq!(first, rgb_bytes(&reg, &req(1234, 96, 80))?);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let reg = reg.clone();
            std::thread::spawn(move || rgb_bytes(&reg, &req(1234, 96, 80)))
        })
        .collect();
    for h in handles {
        let got = h.join().map_err(|_| "thread panicked")??;
        assert_eq!(got, first);
    }
    Ok(())
}

#[test]
fn different_seeds_give_visibly_different_images() -> TestResult {
    let reg = registry()?;
    let a = rgb_bytes(&reg, &req(1, 64, 64))?;
    for seed in [2, 3, u64::MAX] {
        let b = rgb_bytes(&reg, &req(seed, 64, 64))?;
        let mad = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.len() as f64;
        assert!(mad > 20.0, "seed {seed}: mean |diff| only {mad:.1}/255");
    }
    // Not a flat colour either.
    let distinct: std::collections::HashSet<_> = a.chunks_exact(3).collect();
    assert!(
        distinct.len() > 500,
        "only {} distinct colours",
        distinct.len()
    );
    Ok(())
}

#[test]
fn large_render_is_chunked_and_resolution_independent() -> TestResult {
    let reg = registry()?;
    // 2048 x 80 = 163 840 px => 3 row bands (32 + 32 + 16 rows).
    let latent = seed_to_latent(99, 16);
    let big = reg.render_latent("cppn-abstract", &latent, 2048, 80)?;
    assert_eq!(big.len(), 2048 * 80 * 3);
    assert!(big.iter().all(|v| (0.0..=1.0).contains(v)));
    // Same picture at any resolution: column i of a 1024-wide render sits exactly between
    // columns 2i and 2i+1 of the 2048-wide one (same rows), and the CPPN is smooth, so it
    // must be close to their average.
    let half = reg.render_latent("cppn-abstract", &latent, 1024, 80)?;
    let mut worst = 0f32;
    for j in 0..80usize {
        for i in 0..1024usize {
            for c in 0..3 {
                let h = half[(j * 1024 + i) * 3 + c];
                let l = big[(j * 2048 + 2 * i) * 3 + c];
                let r = big[(j * 2048 + 2 * i + 1) * 3 + c];
                worst = worst.max((h - (l + r) / 2.0).abs());
            }
        }
    }
    assert!(worst < 0.02, "resolution dependence {worst}");
    // Full-size limits are accepted.
    let img = reg.generate_image(&req(5, MAX_SIZE, MIN_SIZE))?;
    assert_eq!(
        (img.image.width(), img.image.height()),
        (MAX_SIZE, MIN_SIZE)
    );
    Ok(())
}

#[test]
fn bad_sizes_and_unknown_generator_are_rejected() -> TestResult {
    let reg = registry()?;
    for (w, h) in [
        (0, 64),
        (15, 64),
        (64, 15),
        (2049, 64),
        (64, 2049),
        (u32::MAX, 16),
    ] {
        match reg.generate_image(&req(1, w, h)) {
            Err(GeneratorError::InvalidRequest(m)) => assert!(m.contains("16..=2048"), "{m}"),
            other => return Err(format!("{w}x{h}: expected InvalidRequest, got {other:?}").into()),
        }
    }
    let mut r = req(1, 64, 64);
    r.generator = "no-such-model".into();
    match reg.generate_image(&r) {
        Err(GeneratorError::UnknownGenerator(n)) => assert_eq!(n, "no-such-model"),
        other => return Err(format!("expected UnknownGenerator, got {other:?}").into()),
    }
    match reg.render_latent("cppn-abstract", &[0.0; 3], 64, 64) {
        Err(GeneratorError::InvalidRequest(m)) => assert!(m.contains("16"), "{m}"),
        other => return Err(format!("expected InvalidRequest, got {other:?}").into()),
    }
    let mut nan = vec![0.0f32; 16];
    nan[3] = f32::NAN;
    assert!(matches!(
        reg.render_latent("cppn-abstract", &nan, 64, 64),
        Err(GeneratorError::InvalidRequest(_))
    ));
    Ok(())
}

#[test]
fn request_deserialises_from_json() -> TestResult {
    let r: GenerateRequest = serde_json::from_str(
        r#"{"generator":"cppn-abstract","seed":18446744073709551615,"width":512,"height":256}"#,
    )?;
    assert_eq!(r.seed, u64::MAX);
    assert_eq!((r.width, r.height), (512, 256));
    Ok(())
}

#[test]
fn registry_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<GeneratorRegistry>();
}

fn face(seed: u64, side: u32) -> GenerateRequest {
    GenerateRequest {
        generator: "dcgan-faces".into(),
        seed,
        width: side,
        height: side,
    }
}

#[test]
fn faces_same_seed_same_image_and_upscaled() -> TestResult {
    let reg = registry()?;
    let a = reg.generate_image(&face(11, 256))?;
    let b = reg.generate_image(&face(11, 256))?;
    let c = reg.generate_image(&face(12, 256))?;
    assert_eq!(a.model, "dcgan-faces");
    assert_eq!(a.model_sha256.len(), 64);
    let (a, b, c) = (a.image.to_rgb8(), b.image.to_rgb8(), c.image.to_rgb8());
    assert_eq!(a.dimensions(), (256, 256));
    assert_eq!(a.as_raw(), b.as_raw(), "same seed, different pixels");
    let mad = a
        .as_raw()
        .iter()
        .zip(c.as_raw())
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    assert!(
        mad > 10.0,
        "seeds 11 and 12 give near-identical faces (MAD {mad})"
    );
    // The upscale is a resampling of the native 64x64 render: box-averaging the 256x256
    // image back to 64x64 lands close to the native pixels.
    let native = reg.render_latent("dcgan-faces", &seed_to_latent(11, 100), 64, 64)?;
    let mut worst = 0f64;
    for y in 0..64u32 {
        for x in 0..64u32 {
            for ch in 0..3 {
                let mut sum = 0f64;
                for dy in 0..4 {
                    for dx in 0..4 {
                        sum += f64::from(a.get_pixel(4 * x + dx, 4 * y + dy)[ch]);
                    }
                }
                let n = f64::from(native[((y * 64 + x) * 3) as usize + ch]) * 255.0;
                worst = worst.max((sum / 16.0 - n).abs());
            }
        }
    }
    assert!(
        worst < 60.0,
        "upscaled image strays from the native render by {worst}"
    );
    // Not a flat picture: a face has contrast.
    let (lo, hi) = a
        .as_raw()
        .iter()
        .fold((255u8, 0u8), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(hi - lo > 100, "range {lo}..{hi}");
    Ok(())
}
