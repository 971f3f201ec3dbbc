//! Error type of the generator registry.

use std::path::PathBuf;

/// Everything that can go wrong while loading generators or generating content.
///
/// Load-time errors: [`Registry`](Self::Registry), [`ModelHash`](Self::ModelHash),
/// [`RuntimeMissing`](Self::RuntimeMissing), [`Runtime`](Self::Runtime).
/// Request-time errors: [`UnknownGenerator`](Self::UnknownGenerator),
/// [`InvalidRequest`](Self::InvalidRequest) (both caller mistakes, e.g. HTTP 404 / 400) and
/// [`Text`](Self::Text) (caller mistakes in a speech request, HTTP 400/413),
/// [`Unavailable`](Self::Unavailable) (HTTP 503) and
/// [`Inference`](Self::Inference) (server fault, e.g. HTTP 500).
#[derive(thiserror::Error, Debug)]
pub enum GeneratorError {
    /// The generator registry could not be read or is invalid (missing file, bad TOML,
    /// unsupported schema or kind, bad shapes, duplicate names, unreadable model file, ...).
    #[error("generator registry {path}: {message}")]
    Registry {
        /// Registry file the problem was found in.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A model file's SHA-256 differs from the one pinned in the registry.
    #[error(
        "generator model `{model}` ({path}): SHA-256 mismatch, registry pins {expected} but file has {actual}"
    )]
    ModelHash {
        /// Registry name of the generator.
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
         (or point GeneratorConfig::onnxruntime_path at libonnxruntime.so.1.31.1)"
    )]
    RuntimeMissing(PathBuf),

    /// ONNX Runtime failed to load, the environment could not be created, or a session
    /// could not be created / lacks the inputs and outputs the registry names.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),

    /// No generator with this name is registered.
    #[error("unknown generator `{0}`")]
    UnknownGenerator(String),

    /// The request is out of range (size outside `16..=2048`, wrong latent length, wrong
    /// generator kind, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The generator is registered but cannot run on this instance: its files are not
    /// installed or its phonemizer (espeak-ng) is missing (HTTP 503). The reason says which.
    #[error("generator `{name}` is unavailable: {reason}")]
    Unavailable {
        /// Registry name of the generator.
        name: String,
        /// What is missing and how to install it.
        reason: String,
    },

    /// A speech request's text or speed was refused (a caller mistake; see
    /// [`TextError::code`](crate::speech::TextError::code) for the stable codes).
    #[error(transparent)]
    Text(#[from] crate::speech::TextError),

    /// ONNX Runtime failed while running a generator, or the output was malformed
    /// (wrong element count, non-finite values).
    #[error("generator `{model}` failed: {message}")]
    Inference {
        /// Registry name of the generator.
        model: String,
        /// What went wrong.
        message: String,
    },
}
