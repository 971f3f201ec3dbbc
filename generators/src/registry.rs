//! The generator registry (`generators/models/registry.toml`), written by
//! `training/build_generators.py`.
//!
//! ```toml
//! schema = 1
//!
//! [[generator]]
//! name = "cppn-abstract"
//! version = "1"
//! kind = "image"                  # only "image" for now
//! file = "cppn-abstract-v1.onnx"  # relative to the registry file
//! sha256 = "<64 hex digits>"
//! coords_input = "coords"
//! coords_shape = [-1, 3]          # -1 = pixels (H*W); columns x, y, r
//! latent_input = "latent"
//! latent_shape = [1, 16]
//! output = "rgb"
//! output_shape = [-1, 3]          # RGB in [0,1]
//! description = "..."
//! license = "..."
//! ```
//!
//! Unknown keys (e.g. `weights_seed`) are ignored.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::GeneratorError;

/// Registry schema version this crate understands.
pub const REGISTRY_SCHEMA: u32 = 1;

/// Largest accepted latent dimension (sanity bound on `latent_shape[1]`).
const MAX_LATENT_DIM: usize = 4096;

/// One validated registry entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorEntry {
    /// Unique generator name (what [`GenerateRequest::generator`](crate::GenerateRequest) names).
    pub name: String,
    /// Generator version, reported in [`GeneratedImage::version`](crate::GeneratedImage).
    pub version: String,
    /// Content kind; currently always `"image"`.
    pub kind: String,
    /// Model file, resolved against the registry's directory.
    pub file: PathBuf,
    /// Lower-case hex SHA-256 of the model file.
    pub sha256: String,
    /// Name of the `[N, 3]` float32 coordinate input.
    pub coords_input: String,
    /// Name of the `[1, D]` float32 latent input.
    pub latent_input: String,
    /// Latent dimension `D`.
    pub latent_dim: usize,
    /// Name of the `[N, 3]` float32 RGB output.
    pub output: String,
    /// Human-readable description.
    pub description: String,
    /// Licence / provenance note for the weights.
    pub license: String,
}

/// A parsed, validated registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The registry file (as given).
    pub path: PathBuf,
    /// Generators in file order.
    pub generators: Vec<GeneratorEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    schema: u32,
    #[serde(default, rename = "generator")]
    generators: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    name: String,
    version: String,
    kind: String,
    file: PathBuf,
    sha256: String,
    coords_input: String,
    coords_shape: Vec<i64>,
    latent_input: String,
    latent_shape: Vec<i64>,
    output: String,
    output_shape: Vec<i64>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    license: String,
}

impl Registry {
    /// Reads and validates a registry file. Model files are not read here (see
    /// [`GeneratorEntry::read_verified`]).
    ///
    /// # Errors
    /// [`GeneratorError::Registry`] if the file cannot be read or is invalid.
    pub fn load(path: &Path) -> Result<Self, GeneratorError> {
        let text = std::fs::read_to_string(path).map_err(|e| GeneratorError::Registry {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates registry text; `path` is used for error messages and to resolve
    /// relative model files.
    ///
    /// # Errors
    /// [`GeneratorError::Registry`] for bad TOML, an unsupported `schema`, an unknown
    /// `kind`, bad shapes, empty or duplicate names, a malformed digest, or an absolute /
    /// parent-escaping model path.
    pub fn parse(text: &str, path: &Path) -> Result<Self, GeneratorError> {
        let bad = |message: String| GeneratorError::Registry {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawRegistry = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if raw.schema != REGISTRY_SCHEMA {
            return Err(bad(format!(
                "schema {} is not supported (expected {REGISTRY_SCHEMA})",
                raw.schema
            )));
        }
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let mut seen = HashSet::new();
        let mut generators = Vec::with_capacity(raw.generators.len());
        for g in raw.generators {
            let ctx = |m: &str| bad(format!("generator `{}`: {m}", g.name));
            if g.name.trim().is_empty() {
                return Err(bad("a generator has an empty name".into()));
            }
            if !seen.insert(g.name.clone()) {
                return Err(ctx("duplicate name"));
            }
            if g.kind != "image" {
                return Err(ctx(&format!(
                    "kind `{}` is not supported (only `image`)",
                    g.kind
                )));
            }
            if g.sha256.len() != 64 || !g.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ctx("sha256 must be 64 hex digits"));
            }
            if g.file.is_absolute()
                || g.file
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(ctx(
                    "file must be a relative path inside the registry directory",
                ));
            }
            if g.coords_shape != [-1, 3] {
                return Err(ctx("coords_shape must be [-1, 3]"));
            }
            if g.output_shape != [-1, 3] {
                return Err(ctx("output_shape must be [-1, 3]"));
            }
            let latent_dim = match g.latent_shape.as_slice() {
                [1, d] if *d >= 1 && *d <= MAX_LATENT_DIM as i64 => *d as usize,
                _ => {
                    return Err(ctx(&format!(
                        "latent_shape must be [1, D] with 1 <= D <= {MAX_LATENT_DIM}"
                    )))
                }
            };
            for (field, v) in [
                ("coords_input", &g.coords_input),
                ("latent_input", &g.latent_input),
                ("output", &g.output),
            ] {
                if v.is_empty() {
                    return Err(ctx(&format!("{field} is empty")));
                }
            }
            generators.push(GeneratorEntry {
                file: dir.join(&g.file),
                sha256: g.sha256.to_ascii_lowercase(),
                name: g.name,
                version: g.version,
                kind: g.kind,
                coords_input: g.coords_input,
                latent_input: g.latent_input,
                latent_dim,
                output: g.output,
                description: g.description,
                license: g.license,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            generators,
        })
    }
}

impl GeneratorEntry {
    /// Reads the model file and checks its SHA-256 against the registry.
    ///
    /// # Errors
    /// [`GeneratorError::Registry`] if the file cannot be read (`registry` names the
    /// registry in the message); [`GeneratorError::ModelHash`] on a digest mismatch.
    pub fn read_verified(&self, registry: &Path) -> Result<Vec<u8>, GeneratorError> {
        let bytes = std::fs::read(&self.file).map_err(|e| GeneratorError::Registry {
            path: registry.to_path_buf(),
            message: format!(
                "generator `{}`: cannot read {}: {e}",
                self.name,
                self.file.display()
            ),
        })?;
        let actual = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
        if actual != self.sha256 {
            return Err(GeneratorError::ModelHash {
                model: self.name.clone(),
                path: self.file.clone(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(bytes)
    }
}
