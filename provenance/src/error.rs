use thiserror::Error;

/// Errors of the provenance crate. Validation *verdicts* are not errors: an invalid manifest is
/// an `Ok(C2paReport)` with `validation_state = Invalid`.
#[derive(Debug, Error)]
pub enum ProvenanceError {
    /// The signing certificate chain or private key could not be loaded.
    #[error("signing identity: {0}")]
    Identity(String),
    /// Reading or writing key material failed.
    #[error("key material I/O at {path}: {source}")]
    Io {
        /// File involved.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Generating the development CA failed.
    #[error("certificate generation: {0}")]
    CertificateGeneration(#[from] rcgen::Error),
    /// The manifest request is not valid (unknown digital source type, empty model name, ...).
    #[error("invalid manifest request: {0}")]
    InvalidRequest(String),
    /// The media format cannot carry an embedded C2PA manifest.
    #[error("format {0} cannot carry an embedded C2PA manifest")]
    UnsupportedFormat(String),
    /// c2pa-rs failed while building or signing the manifest.
    #[error("c2pa signing: {0}")]
    Signing(#[source] c2pa::Error),
    /// The configured RFC 3161 time-stamp authority could not be reached or returned no usable
    /// token; nothing was signed.
    #[error("time-stamping: {0}")]
    TimeStamp(String),
    /// The trust configuration is invalid.
    #[error("trust configuration: {0}")]
    Trust(String),
}
