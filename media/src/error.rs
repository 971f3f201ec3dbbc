use thiserror::Error;

/// Errors from sniffing, decoding and encoding untrusted media.
#[derive(Debug, Error)]
pub enum MediaError {
    /// The bytes are not a format Hallmark recognises.
    #[error("unrecognised media format")]
    UnknownFormat,
    /// The format is recognised but not supported for this operation.
    #[error("{format} is not supported for {operation}")]
    Unsupported {
        /// MIME type of the input.
        format: &'static str,
        /// What was attempted ("decoding", "signing", ...).
        operation: &'static str,
    },
    /// A configured limit was exceeded before or while decoding.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The file is truncated or corrupt.
    #[error("corrupt or truncated {format}: {detail}")]
    Corrupt {
        /// MIME type of the input.
        format: &'static str,
        /// Decoder message.
        detail: String,
    },
    /// Encoding the output failed.
    #[error("encoding {format}: {detail}")]
    Encode {
        /// MIME type of the output.
        format: &'static str,
        /// Encoder message.
        detail: String,
    },
}
