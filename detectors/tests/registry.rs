//! Registry parsing and model-hash verification (no ONNX Runtime needed).

use std::path::{Path, PathBuf};

use hallmark_detectors::{
    DetectorError, DetectorPool, DetectorPoolConfig, ModelKind, OutputKind, Preprocessing, Registry,
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
    assert_eq!(img.input_shape, vec![-1, 3, 224, 224]);
    assert_eq!(img.output_kind, OutputKind::Logit);
    assert!(matches!(
        img.preprocess,
        Preprocessing::Crops {
            size: 224,
            crops: 5,
            jpeg_quality: 90,
            ..
        }
    ));
    let bb = img.backbone.as_ref().ok_or("no backbone")?;
    assert_eq!(bb.outputs.len(), bb.head_inputs.len());
    let aud = reg
        .models
        .iter()
        .find(|m| m.kind == ModelKind::Audio)
        .ok_or("no audio model")?;
    assert!(matches!(
        aud.preprocess,
        Preprocessing::Audio {
            sample_rate: 16_000,
            window_samples: 64_000,
            max_windows: 8,
            ..
        }
    ));
    for m in &reg.models {
        let bytes = m.read_verified(&path)?;
        assert!(
            bytes.len() < 20_000_000,
            "{} is {} bytes",
            m.name,
            bytes.len()
        );
        assert!(!m.description.is_empty() && !m.training_data.is_empty());
        assert!(!m.license.is_empty());
        let c = &m.calibration;
        assert!(c.threshold_inconclusive <= c.threshold_likely_synthetic);
        assert!(
            c.fpr_target <= 0.02 + 1e-9,
            "{}: FPR target {}",
            m.name,
            c.fpr_target
        );
        assert!(!c.fitted_on.is_empty());
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
output_kind = "probability"
[model.preprocess]
size = 64
[model.calibration]
method = "platt"
a = 1.0
b = 0.0
threshold_likely_synthetic = 0.9
threshold_inconclusive = 0.5
fpr_target = 0.02
"#;

fn parse(text: &str) -> Result<Registry, DetectorError> {
    Registry::parse(text, Path::new("/x/registry.toml"))
}

#[test]
fn registry_validation() -> TestResult {
    let ok = parse(&format!("schema = 2\n{ENTRY}"))?;
    assert_eq!(ok.models[0].file, PathBuf::from("/x/m.onnx"));
    assert_eq!(ok.models[0].output_kind, OutputKind::Probability);
    assert!(parse("schema = 2\n").is_ok_and(|r| r.models.is_empty()));
    let crops = ENTRY.replace("size = 64\n", "size = 64\nmode = \"crops\"\ncrops = 3\n");
    assert!(matches!(
        parse(&format!("schema = 2\n{crops}"))?.models[0].preprocess,
        Preprocessing::Crops { crops: 3, .. }
    ));

    let bad = [
        format!("schema = 1\n{ENTRY}"),
        format!("schema = 2\n{ENTRY}{ENTRY}"),
        format!("schema = 2\n{}", ENTRY.replace("0000000000", "zz")),
        format!("schema = 2\n{}", ENTRY.replace("size = 64", "size = 32")),
        format!(
            "schema = 2\n{}",
            ENTRY.replace("size = 64", "size = 64\nmode = \"stretch\"")
        ),
        format!(
            "schema = 2\n{}",
            ENTRY.replace("size = 64", "size = 64\nmode = \"crops\"\ncrops = 9")
        ),
        format!(
            "schema = 2\n{}",
            ENTRY.replace("kind = \"image\"", "kind = \"video\"")
        ),
        format!(
            "schema = 2\n{}",
            ENTRY.replace("kind = \"image\"", "kind = \"audio\"")
        ),
        format!(
            "schema = 2\n{}",
            ENTRY.replace("\"m.onnx\"", "\"/abs/m.onnx\"")
        ),
        format!(
            "schema = 2\n{}",
            ENTRY.replace(
                "threshold_inconclusive = 0.5",
                "threshold_inconclusive = 0.95"
            )
        ),
        format!(
            "schema = 2\n{}",
            ENTRY.replace("method = \"platt\"", "method = \"magic\"")
        ),
        format!(
            "schema = 2\n{}",
            ENTRY.replace("output_kind = \"probability\"", "output_kind = \"odds\"")
        ),
        format!(
            "schema = 2\n{}",
            ENTRY.replace(
                "output = \"score\"",
                "output = \"score\"\ncolour = \"blue\""
            )
        ),
        ENTRY.replace("[model.calibration]", "[model.nothing]"),
        "schema = 2\n[[model]]\nname = \"x\"\n".to_string(),
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
    let reg = Registry::load(&models_dir().join("registry.toml"))?;
    std::fs::copy(
        models_dir().join("registry.toml"),
        dir.path().join("registry.toml"),
    )?;
    for m in &reg.models {
        let name = m.file.file_name().ok_or("no file name")?;
        std::fs::copy(&m.file, dir.path().join(name))?;
        if let Some(b) = &m.backbone {
            let bname = b.file.file_name().ok_or("no file name")?;
            std::os::unix::fs::symlink(&b.file, dir.path().join(bname))?;
        }
    }
    let audio = reg
        .models
        .iter()
        .find(|m| m.kind == ModelKind::Audio)
        .ok_or("no audio model")?;
    let victim = dir
        .path()
        .join(audio.file.file_name().ok_or("no file name")?);
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
            assert_eq!(model, &audio.name);
            assert_ne!(expected, actual);
            assert!(e.to_string().contains(&audio.name), "{e}");
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
fn missing_model_file_is_a_registry_error_naming_the_fix() -> TestResult {
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
    match r {
        Err(e @ DetectorError::Registry { .. }) => {
            assert!(e.to_string().contains("fetch-models.sh"), "{e}");
            Ok(())
        }
        other => Err(format!("expected a Registry error, got {other:?}").into()),
    }
}
