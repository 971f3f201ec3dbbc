//! Registry parsing and model verification. Hash checks run before ONNX Runtime is
//! touched, so most of these need no runtime.

use std::path::{Path, PathBuf};

use hallmark_generators::{
    GeneratorConfig, GeneratorError, GeneratorRegistry, GeneratorSpec, Registry,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn parse(text: &str) -> Result<Registry, GeneratorError> {
    Registry::parse(text, Path::new("/x/registry.toml"))
}

fn shipped() -> Result<String, std::io::Error> {
    std::fs::read_to_string(models().join("registry.toml"))
}

#[test]
fn shipped_registry_parses() -> TestResult {
    let reg = Registry::load(&models().join("registry.toml"))?;
    assert_eq!(reg.generators.len(), 3);
    let g = &reg.generators[0];
    assert_eq!(g.name, "cppn-abstract");
    assert_eq!(g.version, "1");
    assert_eq!(g.kind, "image");
    let GeneratorSpec::Image(spec) = &g.spec else {
        return Err("cppn-abstract is not an image generator".into());
    };
    assert_eq!(spec.latent_dim, 16);
    assert_eq!(spec.coords_input.as_deref(), Some("coords"));
    assert_eq!(spec.latent_input, "latent");
    assert_eq!(spec.output, "rgb");
    assert_eq!(g.file, models().join("cppn-abstract-v1.onnx"));
    let f = &reg.generators[1];
    assert_eq!((f.name.as_str(), f.kind.as_str()), ("dcgan-faces", "image"));
    let GeneratorSpec::Image(face) = &f.spec else {
        return Err("dcgan-faces is not an image generator".into());
    };
    assert_eq!(face.coords_input, None);
    assert_eq!(face.native_size, Some((64, 64)));
    assert_eq!(face.latent_dim, 100);
    let v = &reg.generators[2];
    assert_eq!(
        (v.name.as_str(), v.kind.as_str()),
        ("en_US-joe-medium", "speech")
    );
    let GeneratorSpec::Speech(speech) = &v.spec else {
        return Err("en_US-joe-medium is not a voice".into());
    };
    assert_eq!(speech.max_text_chars, 5000);
    assert_eq!(speech.phonemizer, "espeak-ng");
    assert_eq!(
        speech.config,
        models().join("voices/en_US-joe-medium.onnx.json")
    );
    assert!(!g.license.is_empty());
    // The pinned hash matches the shipped file, and the file is small.
    let bytes = g.read_verified(&reg.path)?;
    assert!(bytes.len() < 200 * 1024, "{} bytes", bytes.len());
    Ok(())
}

#[test]
fn invalid_registries_are_rejected() -> TestResult {
    let base = shipped()?;
    let cases = [
        base.replace("schema = 1", "schema = 2"),
        base.replace("kind = \"image\"", "kind = \"audio\""),
        base.replace("latent_shape = [1, 16]", "latent_shape = [16]"),
        base.replace("coords_shape = [-1, 3]", "coords_shape = [-1, 2]"),
        base.replace("output_shape = [-1, 3]", "output_shape = [-1, 4]"),
        base.replace("file = \"cppn", "file = \"../cppn"),
        base.replace("sha256 = \"", "sha256 = \"zz"),
        format!(
            "{base}\n{}",
            &base[base.find("[[generator]]").ok_or("no entry")?..]
        ),
        "schema = 1\n[[generator]]\nname = \"x\"\n".to_string(),
        // Speech entries: each required key, bounds, and paths.
        base.replace("max_text_chars = 5000", "max_text_chars = 0"),
        base.replace("max_text_chars = 5000", "max_text_chars = 1000000"),
        base.replace("config_sha256 = \"", "config_sha256 = \"x"),
        base.replace("phonemizer = \"espeak-ng\"", "phonemizer = \" \""),
        base.replace("config = \"voices/", "config = \"/etc/"),
        base.replace("kind = \"speech\"", "kind = \"video\""),
        // Fixed-size image generators: NCHW output of a sane size.
        base.replace(
            "output_shape = [1, 3, 64, 64]",
            "output_shape = [1, 4, 64, 64]",
        ),
        base.replace(
            "output_shape = [1, 3, 64, 64]",
            "output_shape = [1, 3, 4, 64]",
        ),
        base.replace(
            "output_shape = [1, 3, 64, 64]",
            "output_shape = [1, 3, 4096, 64]",
        ),
        "not toml at all [[".to_string(),
    ];
    for (i, text) in cases.iter().enumerate() {
        assert_ne!(text, &base, "case {i} did not change the registry");
        match parse(text) {
            Err(GeneratorError::Registry { path, message }) => {
                assert_eq!(path, Path::new("/x/registry.toml"), "case {i}: {message}");
            }
            other => return Err(format!("case {i}: expected Registry error, got {other:?}").into()),
        }
    }
    // Duplicate names are named in the message.
    let dup = format!(
        "{base}\n{}",
        &base[base.find("[[generator]]").ok_or("no entry")?..]
    );
    let msg = parse(&dup).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("duplicate") && msg.contains("cppn-abstract"),
        "{msg}"
    );
    // An empty registry is valid.
    assert!(parse("schema = 1\n")?.generators.is_empty());
    Ok(())
}

fn copy_models(dir: &Path) -> Result<(), std::io::Error> {
    for f in [
        "registry.toml",
        "cppn-abstract-v1.onnx",
        "dcgan-faces-v1.onnx",
    ] {
        std::fs::copy(models().join(f), dir.join(f))?;
    }
    Ok(())
}

#[test]
fn corrupted_model_is_detected_and_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    copy_models(dir.path())?;
    let model = dir.path().join("cppn-abstract-v1.onnx");
    let mut bytes = std::fs::read(&model)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&model, bytes)?;
    let cfg = GeneratorConfig {
        registry_path: dir.path().join("registry.toml"),
        onnxruntime_path: dir.path().join("no-such-lib.so"),
    };
    match GeneratorRegistry::load(&cfg) {
        Err(e @ GeneratorError::ModelHash { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("cppn-abstract"), "{msg}");
            if let GeneratorError::ModelHash {
                model,
                path,
                expected,
                actual,
            } = e
            {
                assert_eq!(model, "cppn-abstract");
                assert_eq!(path, dir.path().join("cppn-abstract-v1.onnx"));
                assert_ne!(expected, actual);
            }
        }
        other => return Err(format!("expected ModelHash, got {other:?}").into()),
    }
    Ok(())
}

#[test]
fn missing_model_file_is_a_registry_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::copy(
        models().join("registry.toml"),
        dir.path().join("registry.toml"),
    )?;
    let cfg = GeneratorConfig {
        registry_path: dir.path().join("registry.toml"),
        onnxruntime_path: dir.path().join("no-such-lib.so"),
    };
    match GeneratorRegistry::load(&cfg) {
        Err(GeneratorError::Registry { message, .. }) => {
            assert!(message.contains("cppn-abstract"), "{message}")
        }
        other => return Err(format!("expected Registry error, got {other:?}").into()),
    }
    Ok(())
}

#[test]
fn missing_runtime_tells_user_to_fetch_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    copy_models(dir.path())?;
    let cfg = GeneratorConfig {
        registry_path: dir.path().join("registry.toml"),
        onnxruntime_path: PathBuf::from("/nonexistent/libonnxruntime.so.1.31.1"),
    };
    match GeneratorRegistry::load(&cfg) {
        Err(e @ GeneratorError::RuntimeMissing(_)) => {
            assert!(
                e.to_string().contains("scripts/fetch-onnxruntime.sh"),
                "{e}"
            );
        }
        other => return Err(format!("expected RuntimeMissing, got {other:?}").into()),
    }
    Ok(())
}

#[test]
fn empty_registry_needs_no_runtime() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("registry.toml"), "schema = 1\n")?;
    let cfg = GeneratorConfig {
        registry_path: dir.path().join("registry.toml"),
        onnxruntime_path: PathBuf::from("/nonexistent/lib.so"),
    };
    assert!(GeneratorRegistry::load(&cfg)?.list().is_empty());
    Ok(())
}

#[test]
fn default_config_points_at_repo_paths() {
    let cfg = GeneratorConfig::default();
    assert_eq!(
        cfg.registry_path,
        Path::new("generators/models/registry.toml")
    );
    assert_eq!(
        cfg.onnxruntime_path,
        Path::new(".runtime/onnxruntime/libonnxruntime.so.1.31.1")
    );
}
