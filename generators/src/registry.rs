//! The generator registry (`generators/models/registry.toml`), written by
//! `training/build_generators.py`.
//!
//! ```toml
//! schema = 1
//!
//! [[generator]]
//! name = "cppn-abstract"
//! version = "1"
//! kind = "image"                  # "image" or "speech"
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
//! A `kind = "speech"` entry (a Piper VITS voice, see [`crate::speech`]) replaces the image
//! keys with:
//!
//! ```toml
//! config = "voices/en_US-joe-medium.onnx.json"   # Piper voice config, relative
//! config_sha256 = "<64 hex digits>"
//! phonemizer = "espeak-ng"                       # program run per sentence (PATH or absolute)
//! max_text_chars = 5000                          # longest accepted text, Unicode scalar values
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

/// Largest `max_text_chars` a speech entry may declare.
pub const MAX_TEXT_CHARS_LIMIT: usize = 20_000;

/// What a generator produces and the inputs it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeneratorSpec {
    /// An image generator over pixel coordinates and a latent (`kind = "image"`).
    Image(ImageSpec),
    /// A text-to-speech voice (`kind = "speech"`).
    Speech(SpeechSpec),
}

/// The graph names of an image generator. Two shapes of graph are supported:
///
/// * coordinate generators (CPPN): `coords_input` `[N, 3]` + latent `[1, D]` → `[N, 3]` RGB,
///   rendered at any size (`coords_input` set, `native_size` `None`);
/// * fixed-size latent generators (e.g. a DCGAN): latent `[1, D]` → `[1, 3, H, W]` RGB
///   (`output_shape = [1, 3, H, W]`, no `coords_input`), rendered at `H × W` and resampled to
///   the requested size with a Lanczos-3 filter (`image::imageops`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Name of the `[N, 3]` float32 coordinate input; `None` for a fixed-size generator.
    pub coords_input: Option<String>,
    /// Name of the `[1, D]` float32 latent input.
    pub latent_input: String,
    /// Latent dimension `D`.
    pub latent_dim: usize,
    /// Name of the RGB output (values in `[0, 1]`).
    pub output: String,
    /// `(width, height)` a fixed-size generator renders; `None` for coordinate generators.
    pub native_size: Option<(u32, u32)>,
}

/// A Piper VITS voice: its config file and phonemizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeechSpec {
    /// The voice's Piper JSON config, resolved against the registry's directory.
    pub config: PathBuf,
    /// Lower-case hex SHA-256 of the config file.
    pub config_sha256: String,
    /// The espeak-ng program (a name looked up on `PATH`, or an absolute path).
    pub phonemizer: String,
    /// Longest accepted text, in Unicode scalar values (after NFC normalisation).
    pub max_text_chars: usize,
}

/// One validated registry entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorEntry {
    /// Unique generator name (what [`GenerateRequest::generator`](crate::GenerateRequest) names).
    pub name: String,
    /// Generator version, reported in [`GeneratedImage::version`](crate::GeneratedImage).
    pub version: String,
    /// Content kind (modality): `"image"` or `"speech"`.
    pub kind: String,
    /// Model file, resolved against the registry's directory.
    pub file: PathBuf,
    /// Lower-case hex SHA-256 of the model file.
    pub sha256: String,
    /// Kind-specific inputs and files.
    pub spec: GeneratorSpec,
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
    coords_input: Option<String>,
    coords_shape: Option<Vec<i64>>,
    latent_input: Option<String>,
    latent_shape: Option<Vec<i64>>,
    output: Option<String>,
    output_shape: Option<Vec<i64>>,
    config: Option<PathBuf>,
    config_sha256: Option<String>,
    phonemizer: Option<String>,
    max_text_chars: Option<usize>,
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
            let is_hex64 = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
            if !is_hex64(&g.sha256) {
                return Err(ctx("sha256 must be 64 hex digits"));
            }
            check_relative(&g.file).map_err(|m| ctx(&format!("file {m}")))?;
            let spec = match g.kind.as_str() {
                "image" => GeneratorSpec::Image(image_spec(&g).map_err(|m| ctx(&m))?),
                "speech" => {
                    let config = g.config.clone().ok_or_else(|| ctx("config is missing"))?;
                    check_relative(&config).map_err(|m| ctx(&format!("config {m}")))?;
                    let config_sha256 = g
                        .config_sha256
                        .as_deref()
                        .filter(|h| is_hex64(h))
                        .ok_or_else(|| ctx("config_sha256 must be 64 hex digits"))?
                        .to_ascii_lowercase();
                    let phonemizer = g
                        .phonemizer
                        .clone()
                        .filter(|p| !p.trim().is_empty())
                        .ok_or_else(|| ctx("phonemizer is missing"))?;
                    let max_text_chars = g
                        .max_text_chars
                        .filter(|n| (1..=MAX_TEXT_CHARS_LIMIT).contains(n))
                        .ok_or_else(|| {
                            ctx(&format!(
                                "max_text_chars must be in 1..={MAX_TEXT_CHARS_LIMIT}"
                            ))
                        })?;
                    GeneratorSpec::Speech(SpeechSpec {
                        config: dir.join(config),
                        config_sha256,
                        phonemizer,
                        max_text_chars,
                    })
                }
                other => {
                    return Err(ctx(&format!(
                        "kind `{other}` is not supported (`image` or `speech`)"
                    )))
                }
            };
            generators.push(GeneratorEntry {
                file: dir.join(&g.file),
                sha256: g.sha256.to_ascii_lowercase(),
                name: g.name,
                version: g.version,
                kind: g.kind,
                spec,
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

/// Refuses absolute and parent-escaping paths (model files stay inside the registry's
/// directory).
fn check_relative(p: &Path) -> Result<(), String> {
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err("must be a relative path inside the registry directory".into());
    }
    Ok(())
}

/// Largest side of a fixed-size generator's native output.
const MAX_NATIVE_SIDE: i64 = 1024;

/// The image keys of an entry: a `[1, D]` latent, and either coordinates `[-1, 3]` in and
/// RGB `[-1, 3]` out, or (no coordinates) RGB `[1, 3, H, W]` out.
fn image_spec(g: &RawEntry) -> Result<ImageSpec, String> {
    let native_size = match (&g.coords_input, g.output_shape.as_deref()) {
        (Some(_), _) => {
            if g.coords_shape.as_deref() != Some(&[-1, 3]) {
                return Err("coords_shape must be [-1, 3]".into());
            }
            if g.output_shape.as_deref() != Some(&[-1, 3]) {
                return Err("output_shape must be [-1, 3]".into());
            }
            None
        }
        (None, Some(&[1, 3, h, w]))
            if (8..=MAX_NATIVE_SIDE).contains(&h) && (8..=MAX_NATIVE_SIDE).contains(&w) =>
        {
            if g.coords_shape.is_some() {
                return Err("coords_shape without coords_input".into());
            }
            Some((w as u32, h as u32))
        }
        (None, _) => {
            return Err(format!(
                "without coords_input, output_shape must be [1, 3, H, W] with 8 <= H, W <= {MAX_NATIVE_SIDE}"
            ))
        }
    };
    let latent_dim = match g.latent_shape.as_deref() {
        Some([1, d]) if *d >= 1 && *d <= MAX_LATENT_DIM as i64 => *d as usize,
        _ => {
            return Err(format!(
                "latent_shape must be [1, D] with 1 <= D <= {MAX_LATENT_DIM}"
            ))
        }
    };
    let name = |field: &str, v: &Option<String>| match v {
        Some(v) if !v.is_empty() => Ok(v.clone()),
        _ => Err(format!("{field} is missing or empty")),
    };
    Ok(ImageSpec {
        coords_input: match &g.coords_input {
            Some(_) => Some(name("coords_input", &g.coords_input)?),
            None => None,
        },
        latent_input: name("latent_input", &g.latent_input)?,
        latent_dim,
        output: name("output", &g.output)?,
        native_size,
    })
}

impl GeneratorEntry {
    /// Reads the model file and checks its SHA-256 against the registry.
    ///
    /// # Errors
    /// [`GeneratorError::Registry`] if the file cannot be read (`registry` names the
    /// registry in the message); [`GeneratorError::ModelHash`] on a digest mismatch.
    pub fn read_verified(&self, registry: &Path) -> Result<Vec<u8>, GeneratorError> {
        read_pinned(registry, &self.name, &self.file, &self.sha256)
    }
}

/// Reads `file` and checks its SHA-256 against `expected` (lower-case hex).
///
/// # Errors
/// [`GeneratorError::Registry`] if the file cannot be read; [`GeneratorError::ModelHash`] on
/// a digest mismatch (naming generator `name`).
pub(crate) fn read_pinned(
    registry: &Path,
    name: &str,
    file: &Path,
    expected: &str,
) -> Result<Vec<u8>, GeneratorError> {
    let bytes = std::fs::read(file).map_err(|e| GeneratorError::Registry {
        path: registry.to_path_buf(),
        message: format!("generator `{name}`: cannot read {}: {e}", file.display()),
    })?;
    let actual = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
    if actual != expected {
        return Err(GeneratorError::ModelHash {
            model: name.to_owned(),
            path: file.to_path_buf(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(bytes)
}
