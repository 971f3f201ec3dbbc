//! Registry parsing and model-hash verification (no ONNX Runtime needed).

use std::path::{Path, PathBuf};

use hallmark_detectors::{
    DetectorError, DetectorPool, DetectorPoolConfig, ModelKind, Preprocessing, Registry,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

#[test]
fn shipped_registry_parses_and_verifies() -> TestResult {
    let path = models_dir().join("registry.toml");
    let reg = Registry::load(&path)?;
    assert_eq!(reg.models.len(), 2);
    let img = reg
        .models
        .iter()
        .find(|m| m.kind == ModelKind::Image)
        .ok_or("no image model")?;
    assert_eq!(img.name, "image-residual");
    assert_eq!(img.input, "image");
    assert_eq!(img.output, "score");
    assert_eq!(img.input_shape, vec![-1, 3, 256, 256]);
    assert_eq!(img.preprocess, Preprocessing::Image { size: 256 });
    let aud = reg
        .models
        .iter()
        .find(|m| m.kind == ModelKind::Audio)
        .ok_or("no audio model")?;
    assert_eq!(aud.name, "audio-spectral");
    assert_eq!(
        aud.preprocess,
        Preprocessing::Audio {
            sample_rate: 16_000,
            window_samples: 64_000,
            max_windows: 8
        }
    );
    for m in &reg.models {
        let bytes = m.read_verified(&path)?;
        assert!(
            bytes.len() < 1_000_000,
            "{} is {} bytes",
            m.name,
            bytes.len()
        );
        assert!(!m.description.is_empty() && !m.training_data.is_empty());
    }
    Ok(())
}

const ENTRY: &str = r#"
[[model]]
name = "m"
version = "1"
kind = "image"
file = "m.onnx"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
input = "image"
input_shape = [-1, 3, 64, 64]
output = "score"
[model.preprocess]
image_size = 64
"#;

fn parse(text: &str) -> Result<Registry, DetectorError> {
    Registry::parse(text, Path::new("/x/registry.toml"))
}

#[test]
fn registry_validation() -> TestResult {
    let ok = parse(&format!("schema = 1\n{ENTRY}"))?;
    assert_eq!(ok.models[0].file, PathBuf::from("/x/m.onnx"));
    assert!(parse("schema = 1\n").is_ok_and(|r| r.models.is_empty()));

    let bad = [
        format!("schema = 2\n{ENTRY}"),
        format!("schema = 1\n{ENTRY}{ENTRY}"),
        format!("schema = 1\n{}", ENTRY.replace("0000000000", "zz")),
        format!(
            "schema = 1\n{}",
            ENTRY.replace("image_size = 64", "image_size = 32")
        ),
        format!(
            "schema = 1\n{}",
            ENTRY.replace("kind = \"image\"", "kind = \"video\"")
        ),
        format!(
            "schema = 1\n{}",
            ENTRY.replace("kind = \"image\"", "kind = \"audio\"")
        ),
        format!(
            "schema = 1\n{}",
            ENTRY.replace("\"m.onnx\"", "\"/abs/m.onnx\"")
        ),
        "schema = 1\n[[model]]\nname = \"x\"\n".to_string(),
        "not toml ===".to_string(),
    ];
    for text in bad {
        let r = parse(&text);
        assert!(
            matches!(r, Err(DetectorError::Registry { .. })),
            "accepted:\n{text}\n=> {r:?}"
        );
    }
    Ok(())
}

#[test]
fn corrupted_model_fails_hash_check_naming_the_model() -> TestResult {
    let dir = tempfile::tempdir()?;
    for f in [
        "registry.toml",
        "image-residual-v1.onnx",
        "audio-spectral-v1.onnx",
    ] {
        std::fs::copy(models_dir().join(f), dir.path().join(f))?;
    }
    let victim = dir.path().join("audio-spectral-v1.onnx");
    let mut bytes = std::fs::read(&victim)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, bytes)?;

    let cfg = DetectorPoolConfig {
        registry_path: dir.path().join("registry.toml"),
        // Hashes are checked before ONNX Runtime is touched, so no runtime is needed here.
        onnxruntime_path: dir.path().join("no-such-lib.so"),
        ..DetectorPoolConfig::default()
    };
    match DetectorPool::load(&cfg) {
        Err(e @ DetectorError::ModelHash { .. }) => {
            let DetectorError::ModelHash {
                ref model,
                ref expected,
                ref actual,
                ..
            } = e
            else {
                return Err("unreachable".into());
            };
            assert_eq!(model, "audio-spectral");
            assert_ne!(expected, actual);
            assert!(e.to_string().contains("audio-spectral"), "{e}");
            Ok(())
        }
        other => Err(format!("expected ModelHash error, got {other:?}").into()),
    }
}

#[test]
fn missing_runtime_tells_user_to_fetch_it() -> TestResult {
    let cfg = DetectorPoolConfig {
        registry_path: models_dir().join("registry.toml"),
        onnxruntime_path: PathBuf::from("/nonexistent/libonnxruntime.so.1.31.1"),
        ..DetectorPoolConfig::default()
    };
    match DetectorPool::load(&cfg) {
        Err(e @ DetectorError::RuntimeMissing(_)) => {
            assert!(
                e.to_string().contains("scripts/fetch-onnxruntime.sh"),
                "{e}"
            );
            Ok(())
        }
        other => Err(format!("expected RuntimeMissing, got {other:?}").into()),
    }
}

#[test]
fn missing_model_file_is_a_registry_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::copy(
        models_dir().join("registry.toml"),
        dir.path().join("registry.toml"),
    )?;
    let cfg = DetectorPoolConfig {
        registry_path: dir.path().join("registry.toml"),
        ..DetectorPoolConfig::default()
    };
    let r = DetectorPool::load(&cfg);
    assert!(matches!(r, Err(DetectorError::Registry { .. })), "{r:?}");
    Ok(())
}
