//! The model registry (`detectors/models/registry.toml`), written by the training scripts
//! (`training/detect_image.py`, `training/detect_audio.py`) or by `hallmark detectors
//! calibrate`, and editable by an operator who brings their own ONNX detector
//! (`detectors/README.md` documents every field with an example).
//!
//! ```toml
//! schema = 2
//!
//! [[model]]
//! name = "image-clip-residual"
//! version = "2"
//! kind = "image"                     # image | audio
//! file = "image-clip-residual-v2.onnx"   # relative to the registry file
//! sha256 = "<64 hex digits>"
//! input = "image"                    # the media tensor's input name
//! input_shape = [-1, 3, 224, 224]    # -1 = batch
//! output = "logit"
//! output_kind = "logit"              # logit | probability (class 1 = synthetic)
//! license = "..."
//!
//! [model.backbone]                   # optional frozen feature extractor run first
//! file = "clip-vit-b16.int8.onnx"
//! sha256 = "<64 hex digits>"
//! input = "pixel_values"
//! mean = [0.481, 0.458, 0.408]       # per-channel normalisation of the backbone input
//! std = [0.269, 0.261, 0.276]
//! outputs = ["image_embeds", "onnx::Gather_1524"]
//! head_inputs = ["image_embeds", "hidden"]  # the names the head graph reads them under
//!
//! [model.preprocess]                 # image: mode = "resize" | "crops"
//! mode = "crops"
//! size = 224
//! max_short_side = 512               # larger images are first downscaled
//! crops = 5                          # centre + 4 corners (1 = centre only)
//! jpeg_quality = 90                  # canonical re-encode (0 = none)
//! min_side = 64                      # smaller images get `no_signal`
//! # audio: sample_rate, window_samples, max_windows, min_seconds, min_rms_dbfs
//!
//! [model.calibration]
//! method = "platt"                   # p = sigmoid(a * logit + b)
//! a = 1.0
//! b = 0.0
//! threshold_likely_synthetic = 0.9   # calibrated probability
//! threshold_inconclusive = 0.5
//! fpr_target = 0.02                  # the real-media FPR the threshold was set at
//! fitted_on = "..."
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::calibration::Calibration;
use crate::DetectorError;

/// Registry schema version this crate understands.
pub const REGISTRY_SCHEMA: u32 = 2;

/// Which media a model scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Input `[N, 3, S, S]` RGB `f32` in `[0, 1]`.
    Image,
    /// Input `[N, W]` mono `f32` samples in `[-1, 1]` at a fixed sample rate.
    Audio,
}

/// What the model's output means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// A logit of P(synthetic).
    #[default]
    Logit,
    /// P(synthetic) in `[0, 1]` (converted to a logit before averaging and calibration).
    Probability,
}

/// How media is turned into the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Preprocessing {
    /// Convert to 8-bit RGB, resize to `size`×`size` (Triangle filter, aspect ratio not
    /// kept), scale to `[0, 1]`, layout NCHW.
    Image {
        /// Side length in pixels.
        size: u32,
        /// Images whose shorter side is below this get `no_signal`.
        min_side: u32,
    },
    /// Native-resolution crops: RGB8; shorter side above `max_short_side` → downscaled to
    /// it, below `size` → upscaled to `size` (Triangle filter); optional canonical JPEG
    /// re-encode at `jpeg_quality` (4:2:2, the `image` crate's encoder); `crops` crops of
    /// `size`×`size` (centre, then the four corners); NCHW in `[0, 1]`; the crop logits
    /// are averaged.
    Crops {
        /// Crop side in pixels.
        size: u32,
        /// Shorter-side cap in pixels.
        max_short_side: u32,
        /// Number of crops: 1 (centre) to 5.
        crops: u32,
        /// Canonical JPEG quality (1–100), 0 for none.
        jpeg_quality: u8,
        /// Images whose shorter side is below this get `no_signal`.
        min_side: u32,
    },
    /// Mix down to mono, resample to `sample_rate`, cut up to `max_windows` windows of
    /// `window_samples` samples evenly spread over the clip (zero-padded), average the
    /// window logits.
    Audio {
        /// Model sample rate in Hz.
        sample_rate: u32,
        /// Samples per window (the model's second input dimension).
        window_samples: usize,
        /// Most windows scored per clip.
        max_windows: usize,
        /// Clips shorter than this (seconds) get `no_signal`.
        min_seconds: f32,
        /// Clips whose RMS level is below this (dBFS) get `no_signal`.
        min_rms_dbfs: f32,
    },
}

/// A frozen feature extractor run before the model ("head").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backbone {
    /// Model file, resolved against the registry's directory.
    pub file: PathBuf,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// Graph input name.
    pub input: String,
    /// Per-channel mean subtracted from the `[0, 1]` input.
    pub mean: [f32; 3],
    /// Per-channel standard deviation the input is divided by.
    pub std: [f32; 3],
    /// Backbone outputs passed to the head.
    pub outputs: Vec<String>,
    /// Head input names, one per output.
    pub head_inputs: Vec<String>,
}

/// One validated registry entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    /// Unique model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// Media kind.
    pub kind: ModelKind,
    /// Model file, resolved against the registry's directory.
    pub file: PathBuf,
    /// Lower-case hex SHA-256 of the model file.
    pub sha256: String,
    /// Graph input name of the media tensor.
    pub input: String,
    /// Graph input shape; `-1` marks the batch dimension.
    pub input_shape: Vec<i64>,
    /// Graph output name; the output has shape `[N, 1]` (or `[N]`).
    pub output: String,
    /// What the output means.
    pub output_kind: OutputKind,
    /// Human-readable description.
    pub description: String,
    /// Where the training data came from.
    pub training_data: String,
    /// Licence of the weights.
    pub license: String,
    /// Preprocessing parameters.
    pub preprocess: Preprocessing,
    /// Optional frozen backbone.
    pub backbone: Option<Backbone>,
    /// Calibration and thresholds.
    pub calibration: Calibration,
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
#[serde(deny_unknown_fields)]
struct RawRegistry {
    schema: u32,
    #[serde(default, rename = "model")]
    models: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
    output_kind: OutputKind,
    #[serde(default)]
    description: String,
    #[serde(default)]
    training_data: String,
    #[serde(default)]
    license: String,
    #[serde(default)]
    preprocess: RawPreprocess,
    backbone: Option<RawBackbone>,
    calibration: Calibration,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPreprocess {
    mode: Option<String>,
    size: Option<u32>,
    max_short_side: Option<u32>,
    crops: Option<u32>,
    jpeg_quality: Option<u8>,
    min_side: Option<u32>,
    sample_rate: Option<u32>,
    window_samples: Option<usize>,
    max_windows: Option<usize>,
    min_seconds: Option<f32>,
    min_rms_dbfs: Option<f32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackbone {
    file: PathBuf,
    sha256: String,
    input: String,
    #[serde(default = "unit3")]
    mean: [f32; 3],
    #[serde(default = "one3")]
    std: [f32; 3],
    outputs: Vec<String>,
    head_inputs: Vec<String>,
}

fn unit3() -> [f32; 3] {
    [0.0; 3]
}
fn one3() -> [f32; 3] {
    [1.0; 3]
}

fn check_sha(s: &str) -> Option<String> {
    let s = s.to_ascii_lowercase();
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

fn image_preprocess(
    p: &RawPreprocess,
    shape: &[i64],
    e: &dyn Fn(&str) -> DetectorError,
) -> Result<Preprocessing, DetectorError> {
    let size = p
        .size
        .ok_or_else(|| e("image model needs preprocess.size"))?;
    let s = i64::from(size);
    if size < 8 || shape != [-1, 3, s, s] {
        return Err(e(&format!(
            "input_shape {shape:?} does not match preprocess.size: expected [-1, 3, {size}, {size}]"
        )));
    }
    let min_side = p.min_side.unwrap_or(32);
    match p.mode.as_deref().unwrap_or("resize") {
        "resize" => Ok(Preprocessing::Image { size, min_side }),
        "crops" => {
            let crops = p.crops.unwrap_or(5);
            let max_short_side = p.max_short_side.unwrap_or(512);
            let jpeg_quality = p.jpeg_quality.unwrap_or(0);
            if !(1..=5).contains(&crops) {
                return Err(e("preprocess.crops must be 1..=5"));
            }
            if max_short_side < size {
                return Err(e("preprocess.max_short_side must be >= size"));
            }
            if jpeg_quality > 100 {
                return Err(e("preprocess.jpeg_quality must be 0..=100"));
            }
            Ok(Preprocessing::Crops {
                size,
                max_short_side,
                crops,
                jpeg_quality,
                min_side,
            })
        }
        other => Err(e(&format!(
            "unknown preprocess.mode `{other}` (resize | crops)"
        ))),
    }
}

fn audio_preprocess(
    p: &RawPreprocess,
    shape: &[i64],
    e: &dyn Fn(&str) -> DetectorError,
) -> Result<Preprocessing, DetectorError> {
    let (Some(sample_rate), Some(window_samples)) = (p.sample_rate, p.window_samples) else {
        return Err(e(
            "audio model needs preprocess.sample_rate and preprocess.window_samples",
        ));
    };
    let max_windows = p.max_windows.unwrap_or(8);
    if sample_rate == 0 || window_samples == 0 || max_windows == 0 {
        return Err(e("sample_rate, window_samples and max_windows must be > 0"));
    }
    let w = i64::try_from(window_samples).unwrap_or(-2);
    if shape != [-1, w] {
        return Err(e(&format!(
            "input_shape {shape:?} does not match preprocess.window_samples: expected [-1, {window_samples}]"
        )));
    }
    let min_seconds = p.min_seconds.unwrap_or(1.0);
    let min_rms_dbfs = p.min_rms_dbfs.unwrap_or(-60.0);
    if !min_seconds.is_finite() || min_seconds < 0.0 || !min_rms_dbfs.is_finite() {
        return Err(e("min_seconds must be >= 0 and min_rms_dbfs finite"));
    }
    Ok(Preprocessing::Audio {
        sample_rate,
        window_samples,
        max_windows,
        min_seconds,
        min_rms_dbfs,
    })
}

impl Registry {
    /// Reads and validates a registry file. Does not touch the model files.
    ///
    /// # Errors
    /// [`DetectorError::Registry`] if the file cannot be read, is not valid TOML, has an
    /// unknown schema or field, duplicate model names, a malformed SHA-256, preprocessing
    /// parameters that disagree with the declared input shape, or an invalid calibration.
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
            let sha256 = check_sha(&m.sha256).ok_or_else(|| e("`sha256` must be 64 hex digits"))?;
            let preprocess = match m.kind {
                ModelKind::Image => image_preprocess(&m.preprocess, &m.input_shape, &e)?,
                ModelKind::Audio => audio_preprocess(&m.preprocess, &m.input_shape, &e)?,
            };
            let backbone = match m.backbone {
                None => None,
                Some(b) => {
                    if m.kind != ModelKind::Image {
                        return Err(e("a backbone is supported for image models only"));
                    }
                    if b.file.is_absolute() {
                        return Err(e("backbone `file` must be relative to the registry"));
                    }
                    if b.outputs.is_empty() || b.outputs.len() != b.head_inputs.len() {
                        return Err(e(
                            "backbone.outputs and backbone.head_inputs must be non-empty and of equal length",
                        ));
                    }
                    if b.std.iter().any(|s| !s.is_finite() || *s <= 0.0)
                        || b.mean.iter().any(|v| !v.is_finite())
                    {
                        return Err(e("backbone.std must be > 0 and mean finite"));
                    }
                    Some(Backbone {
                        file: base.join(&b.file),
                        sha256: check_sha(&b.sha256)
                            .ok_or_else(|| e("backbone `sha256` must be 64 hex digits"))?,
                        input: b.input,
                        mean: b.mean,
                        std: b.std,
                        outputs: b.outputs,
                        head_inputs: b.head_inputs,
                    })
                }
            };
            m.calibration.validate().map_err(|msg| e(&msg))?;
            models.push(ModelEntry {
                file: base.join(&m.file),
                name: m.name,
                version: m.version,
                kind: m.kind,
                sha256,
                input: m.input,
                input_shape: m.input_shape,
                output: m.output,
                output_kind: m.output_kind,
                description: m.description,
                training_data: m.training_data,
                license: m.license,
                preprocess,
                backbone,
                calibration: m.calibration,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            models,
        })
    }
}

/// Reads `file` and checks its SHA-256 against `expected`; returns the bytes, so a session is
/// built from exactly the bytes that were verified.
///
/// # Errors
/// [`DetectorError::Registry`] if the file cannot be read (naming the model and the file);
/// [`DetectorError::ModelHash`] (naming the model) if the digest differs.
pub fn read_verified(
    model: &str,
    file: &Path,
    expected: &str,
    registry: &Path,
) -> Result<Vec<u8>, DetectorError> {
    let bytes = std::fs::read(file).map_err(|e| DetectorError::Registry {
        path: registry.to_path_buf(),
        message: format!(
            "model `{model}`: cannot read {}: {e}{}",
            file.display(),
            if file.extension().is_some_and(|x| x == "onnx") && !file.exists() {
                " (run `make setup` / scripts/fetch-models.sh for the pretrained backbones)"
            } else {
                ""
            }
        ),
    })?;
    let actual = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
    if actual != expected {
        return Err(DetectorError::ModelHash {
            model: model.to_owned(),
            path: file.to_path_buf(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(bytes)
}

impl ModelEntry {
    /// Reads the model file and checks its SHA-256 against the registry.
    ///
    /// # Errors
    /// As [`read_verified`].
    pub fn read_verified(&self, registry: &Path) -> Result<Vec<u8>, DetectorError> {
        read_verified(&self.name, &self.file, &self.sha256, registry)
    }
}
