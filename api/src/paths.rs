//! Where an instance finds its files when no setting names them: never the working directory.
//!
//! * Models and registries: `<exe>/../share/hallmark/{detectors,generators}/models/registry.toml`
//!   (the `make install PREFIX=DIR` layout, also the Docker image's), then the source tree the
//!   binary was built from (`cargo run`, `./target/debug/hallmark`).
//! * ONNX Runtime: `<exe>/../lib/libonnxruntime.so.<version>`, then `<source>/.runtime/onnxruntime/`.
//! * Data (database, watermark key, signing identity, audit-log key): `$XDG_DATA_HOME/hallmark`,
//!   else `$HOME/.local/share/hallmark` (XDG Base Directory Specification), so a command run in a
//!   random folder uses the same instance as every other command of that user.
//!
//! An explicitly configured relative path keeps its usual meaning (relative to the working
//! directory): that is the user's choice, not a silent default.

use std::path::{Path, PathBuf};

/// File name of the ONNX Runtime shared library the `ort` crate is built for.
pub const ONNXRUNTIME_LIB: &str = "libonnxruntime.so.1.31.1";

/// The source tree this binary was compiled from (`cargo run` fallback).
fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `<exe>/..`: the install prefix when the binary sits in `<prefix>/bin`.
fn install_prefix() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let exe = exe.canonicalize().unwrap_or(exe);
    Some(exe.parent()?.parent()?.to_path_buf())
}

/// A file the instance needs, and the setting that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `detectors.registry`.
    DetectorRegistry,
    /// `generators.registry`.
    GeneratorRegistry,
    /// `detectors.onnxruntime`.
    OnnxRuntime,
}

impl Resource {
    /// What it is, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Self::DetectorRegistry => "detector model registry",
            Self::GeneratorRegistry => "generator model registry",
            Self::OnnxRuntime => "ONNX Runtime library",
        }
    }

    /// The environment form of the setting that names it.
    pub fn setting(self) -> &'static str {
        match self {
            Self::DetectorRegistry => "HALLMARK__DETECTORS__REGISTRY",
            Self::GeneratorRegistry => "HALLMARK__GENERATORS__REGISTRY",
            Self::OnnxRuntime => "HALLMARK__DETECTORS__ONNXRUNTIME (or ORT_DYLIB_PATH)",
        }
    }

    /// What else gets the instance going without it.
    fn alternative(self) -> &'static str {
        match self {
            Self::DetectorRegistry => {
                "or run without detectors: HALLMARK__DETECTORS__ENABLED=false"
            }
            Self::GeneratorRegistry => {
                "or run without generators: HALLMARK__GENERATORS__ENABLED=false"
            }
            Self::OnnxRuntime => {
                "fetch it with scripts/fetch-onnxruntime.sh (or `make install`), or set \
                 HALLMARK__DETECTORS__ENABLED=false and HALLMARK__GENERATORS__ENABLED=false"
            }
        }
    }

    fn relative(self) -> (&'static str, String) {
        match self {
            Self::DetectorRegistry => (
                "share/hallmark",
                "detectors/models/registry.toml".to_owned(),
            ),
            Self::GeneratorRegistry => (
                "share/hallmark",
                "generators/models/registry.toml".to_owned(),
            ),
            Self::OnnxRuntime => ("lib", ONNXRUNTIME_LIB.to_owned()),
        }
    }

    /// Where it is looked for when no setting names it, in order.
    pub fn candidates(self) -> Vec<PathBuf> {
        let (installed, rel) = self.relative();
        let mut out = Vec::new();
        if let Some(p) = install_prefix() {
            out.push(p.join(installed).join(&rel));
        }
        let src = source_root();
        out.push(match self {
            Self::OnnxRuntime => src.join(".runtime/onnxruntime").join(&rel),
            _ => src.join(&rel),
        });
        out
    }

    /// The first existing candidate, else the first candidate (so that the error names it).
    pub fn locate(self) -> PathBuf {
        let c = self.candidates();
        c.iter()
            .find(|p| p.is_file())
            .or(c.first())
            .cloned()
            .unwrap_or_default()
    }

    /// Checks that `path` (the setting in effect) is a readable file.
    ///
    /// # Errors
    /// A message naming the file, where it was looked for, and the setting to change.
    pub fn check(self, path: &Path, configured: bool) -> anyhow::Result<()> {
        if path.is_file() {
            return Ok(());
        }
        let looked = if configured {
            format!("{} (configured)", path.display())
        } else {
            self.candidates()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        anyhow::bail!(
            "{} not found (looked at: {looked}); set {} to its path, {}",
            self.what(),
            self.setting(),
            self.alternative()
        )
    }
}

/// The per-user data directory: `$XDG_DATA_HOME/hallmark`, else `$HOME/.local/share/hallmark`.
///
/// # Errors
/// Neither variable is set (e.g. a service account without a home): names the setting.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    let nonempty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(x) = nonempty("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
        return Ok(x.join("hallmark"));
    }
    if let Some(h) = nonempty("HOME") {
        return Ok(h.join(".local/share/hallmark"));
    }
    anyhow::bail!(
        "no data directory: neither XDG_DATA_HOME nor HOME is set; set \
         HALLMARK__STORAGE__DATA_DIR (storage.data_dir) to where this instance keeps its \
         database and keys"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn source_tree_fallback_finds_the_shipped_registries() {
        // Tests run from the source tree, so the fallback candidate exists whatever the cwd.
        for r in [Resource::DetectorRegistry, Resource::GeneratorRegistry] {
            let p = r.locate();
            assert!(p.is_file(), "{}", p.display());
            r.check(&p, false).unwrap();
        }
    }

    #[test]
    fn a_missing_file_names_its_setting() {
        let e = Resource::OnnxRuntime
            .check(Path::new("/nonexistent/libonnxruntime.so"), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("HALLMARK__DETECTORS__ONNXRUNTIME"), "{e}");
        assert!(e.contains("/nonexistent/libonnxruntime.so"), "{e}");
        let e = Resource::DetectorRegistry
            .check(Path::new("/nonexistent/registry.toml"), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("HALLMARK__DETECTORS__REGISTRY"), "{e}");
        assert!(!e.contains("fetch-onnxruntime"), "{e}");
    }
}
