//! The model registry (`detectors/models/registry.toml`), written by
//! `training/build_detectors.py`.
//!
//! ```toml
//! schema = 1
//!
//! [[model]]
//! name = "image-residual"
//! version = "1"
//! kind = "image"                    # image | audio
//! file = "image-residual-v1.onnx"   # relative to the registry file
//! sha256 = "<64 hex digits>"
//! input = "image"
//! input_shape = [-1, 3, 256, 256]   # -1 = batch
//! output = "score"
//! description = "..."
//! training_data = "..."
//!
//! [model.preprocess]
//! image_size = 256                  # image models
//! # sample_rate = 16000             # audio models
//! # window_samples = 64000
//! # max_windows = 8
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::DetectorError;

/// Registry schema version this crate understands.
pub const REGISTRY_SCHEMA: u32 = 1;

/// Which media a model scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Input `[N, 3, S, S]` RGB `f32` in `[0, 1]`.
    Image,
    /// Input `[N, W]` mono `f32` samples in `[-1, 1]` at a fixed sample rate.
    Audio,
}

/// How media is turned into the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Preprocessing {
    /// Convert to 8-bit RGB, resize to `size`×`size` (Triangle filter, aspect ratio not
    /// kept), scale to `[0, 1]`, layout NCHW.
    Image {
        /// Side length in pixels.
        size: u32,
    },
    /// Mix down to mono, resample to `sample_rate`, cut up to `max_windows` windows of
    /// `window_samples` samples evenly spread over the clip (zero-padded), average the
    /// window scores.
    Audio {
        /// Model sample rate in Hz.
        sample_rate: u32,
        /// Samples per window (the model's second input dimension).
        window_samples: usize,
        /// Most windows scored per clip.
        max_windows: usize,
    },
}

/// One validated registry entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    /// Unique model name, reported in [`DetectorScore::model`](crate::DetectorScore::model).
    pub name: String,
    /// Model version, reported in [`DetectorScore::version`](crate::DetectorScore::version).
    pub version: String,
    /// Media kind.
    pub kind: ModelKind,
    /// Model file, resolved against the registry's directory.
    pub file: PathBuf,
    /// Lower-case hex SHA-256 of the model file.
    pub sha256: String,
    /// Graph input name.
    pub input: String,
    /// Graph input shape; `-1` marks the batch dimension.
    pub input_shape: Vec<i64>,
    /// Graph output name; the output has shape `[N, 1]`.
    pub output: String,
    /// Human-readable description.
    pub description: String,
    /// Where the training data came from.
    pub training_data: String,
    /// Preprocessing parameters.
    pub preprocess: Preprocessing,
}

/// A parsed, validated registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    /// Path the registry was read from.
    pub path: PathBuf,
    /// Models in file order.
    pub models: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct RawRegistry {
    schema: u32,
    #[serde(default, rename = "model")]
    models: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    name: String,
    version: String,
    kind: ModelKind,
    file: PathBuf,
    sha256: String,
    input: String,
    input_shape: Vec<i64>,
    output: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    training_data: String,
    #[serde(default)]
    preprocess: RawPreprocess,
}

#[derive(Deserialize, Default)]
struct RawPreprocess {
    image_size: Option<u32>,
    sample_rate: Option<u32>,
    window_samples: Option<usize>,
    max_windows: Option<usize>,
}

impl Registry {
    /// Reads and validates a registry file. Does not touch the model files.
    ///
    /// # Errors
    /// [`DetectorError::Registry`] if the file cannot be read, is not valid TOML, has an
    /// unknown schema, duplicate model names, a malformed SHA-256, or preprocessing
    /// parameters that disagree with the declared input shape.
    pub fn load(path: &Path) -> Result<Self, DetectorError> {
        let text = std::fs::read_to_string(path).map_err(|e| DetectorError::Registry {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses registry text; `path` is used to resolve model files and in errors.
    ///
    /// # Errors
    /// As [`Registry::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, DetectorError> {
        let err = |message: String| DetectorError::Registry {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawRegistry = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if raw.schema != REGISTRY_SCHEMA {
            return Err(err(format!(
                "schema {} is not supported (expected {REGISTRY_SCHEMA})",
                raw.schema
            )));
        }
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let mut seen = HashSet::new();
        let mut models = Vec::with_capacity(raw.models.len());
        for m in raw.models {
            let e = |msg: &str| err(format!("model `{}`: {msg}", m.name));
            if m.name.is_empty() {
                return Err(err("a model has an empty name".into()));
            }
            if !seen.insert(m.name.clone()) {
                return Err(e("duplicate name"));
            }
            if m.file.is_absolute() {
                return Err(e("`file` must be relative to the registry"));
            }
            let sha256 = m.sha256.to_ascii_lowercase();
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(e("`sha256` must be 64 hex digits"));
            }
            let preprocess = match m.kind {
                ModelKind::Image => {
                    let size = m
                        .preprocess
                        .image_size
                        .ok_or_else(|| e("image model needs preprocess.image_size"))?;
                    let s = i64::from(size);
                    if size == 0 || m.input_shape != [-1, 3, s, s] {
                        return Err(e(&format!(
                            "input_shape {:?} does not match [-1, 3, {size}, {size}]",
                            m.input_shape
                        )));
                    }
                    Preprocessing::Image { size }
                }
                ModelKind::Audio => {
                    let (Some(sample_rate), Some(window_samples)) =
                        (m.preprocess.sample_rate, m.preprocess.window_samples)
                    else {
                        return Err(e(
                            "audio model needs preprocess.sample_rate and preprocess.window_samples",
                        ));
                    };
                    let max_windows = m.preprocess.max_windows.unwrap_or(8);
                    let w = i64::try_from(window_samples).unwrap_or(-2);
                    if sample_rate == 0 || window_samples == 0 || max_windows == 0 {
                        return Err(e("sample_rate, window_samples and max_windows must be > 0"));
                    }
                    if m.input_shape != [-1, w] {
                        return Err(e(&format!(
                            "input_shape {:?} does not match [-1, {window_samples}]",
                            m.input_shape
                        )));
                    }
                    Preprocessing::Audio {
                        sample_rate,
                        window_samples,
                        max_windows,
                    }
                }
            };
            models.push(ModelEntry {
                file: base.join(&m.file),
                name: m.name,
                version: m.version,
                kind: m.kind,
                sha256,
                input: m.input,
                input_shape: m.input_shape,
                output: m.output,
                description: m.description,
                training_data: m.training_data,
                preprocess,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            models,
        })
    }
}

impl ModelEntry {
    /// Reads the model file and checks its SHA-256 against the registry.
    ///
    /// Returns the file's bytes, so the session is built from exactly the bytes that
    /// were verified.
    ///
    /// # Errors
    /// [`DetectorError::Registry`] if the file cannot be read;
    /// [`DetectorError::ModelHash`] (naming the model) if the digest differs.
    pub fn read_verified(&self, registry: &Path) -> Result<Vec<u8>, DetectorError> {
        let bytes = std::fs::read(&self.file).map_err(|e| DetectorError::Registry {
            path: registry.to_path_buf(),
            message: format!(
                "model `{}`: cannot read {}: {e}",
                self.name,
                self.file.display()
            ),
        })?;
        let actual = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
        if actual != self.sha256 {
            return Err(DetectorError::ModelHash {
                model: self.name.clone(),
                path: self.file.clone(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(bytes)
    }
}
