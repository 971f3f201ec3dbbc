//! ONNX Runtime initialisation, shared with `hallmark-detectors`.
//!
//! `ort` allows exactly one environment per process, so every Hallmark crate that runs ONNX
//! models obtains it from [`hallmark_detectors::init_runtime`] ("init once, first path wins").

use std::path::Path;

use ort::environment::Environment;

use crate::GeneratorError;

/// Loads ONNX Runtime from `path` (once per process) and returns the shared environment.
///
/// # Errors
/// [`GeneratorError::RuntimeMissing`] if `path` is not a file (run
/// `scripts/fetch-onnxruntime.sh`); [`GeneratorError::Runtime`] if it cannot be loaded.
pub fn init_runtime(path: &Path) -> Result<Environment, GeneratorError> {
    hallmark_detectors::init_runtime(path).map_err(|e| match e {
        hallmark_detectors::DetectorError::RuntimeMissing(p) => GeneratorError::RuntimeMissing(p),
        other => GeneratorError::Runtime(other.to_string()),
    })
}
