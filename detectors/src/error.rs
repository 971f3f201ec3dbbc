//! Error type of the detector pool.

use std::path::PathBuf;

/// Everything that can go wrong while loading detectors or scoring media.
///
/// Load-time errors: [`Registry`](Self::Registry), [`ModelHash`](Self::ModelHash),
/// [`RuntimeMissing`](Self::RuntimeMissing), [`Runtime`](Self::Runtime).
/// Request-time errors: [`InvalidInput`](Self::InvalidInput),
/// [`Overloaded`](Self::Overloaded), [`Timeout`](Self::Timeout),
/// [`Inference`](Self::Inference), [`WorkerGone`](Self::WorkerGone).
#[derive(thiserror::Error, Debug)]
pub enum DetectorError {
    /// The model registry could not be read or is invalid (missing file, bad TOML,
    /// unknown kind, inconsistent preprocessing parameters, duplicate names, ...).
    #[error("detector registry {path}: {message}")]
    Registry {
        /// Registry file the problem was found in.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A model file's SHA-256 differs from the one pinned in the registry.
    #[error("model `{model}` ({path}): SHA-256 mismatch, registry pins {expected} but file has {actual}")]
    ModelHash {
        /// Registry name of the model.
        model: String,
        /// Model file that was hashed.
        path: PathBuf,
        /// Hex digest from the registry.
        expected: String,
        /// Hex digest of the file on disk.
        actual: String,
    },

    /// The ONNX Runtime shared library is not at the configured path.
    #[error(
        "ONNX Runtime library not found at {0}; run scripts/fetch-onnxruntime.sh \
         (or point DetectorPoolConfig::onnxruntime_path at libonnxruntime.so.1.31.1)"
    )]
    RuntimeMissing(PathBuf),

    /// ONNX Runtime failed to load, or a session could not be created.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),

    /// The input cannot be scored (empty image, zero-length audio, absurd sample rate, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A model's request queue is full; the request was rejected without queueing.
    /// Callers should shed load (e.g. HTTP 503) rather than retry immediately.
    #[error("detector queue is full")]
    Overloaded,

    /// No result arrived within [`DetectorPoolConfig::timeout`](crate::DetectorPoolConfig::timeout).
    #[error("detector timed out")]
    Timeout,

    /// ONNX Runtime returned an error while running a model, or its output was malformed.
    #[error("inference with model `{model}` failed: {message}")]
    Inference {
        /// Registry name of the model.
        model: String,
        /// Error text.
        message: String,
    },

    /// A model's worker thread is no longer running (it panicked or the pool is shutting down).
    #[error("worker for model `{0}` has stopped")]
    WorkerGone(String),
}
