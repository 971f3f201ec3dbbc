//! Reading uploads: multipart fields or a raw body, never past the configured size limit.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt as _;

use crate::error::ApiError;

/// An upload: the `file` bytes and the optional `metadata` JSON text.
#[derive(Debug, Default)]
pub struct Upload {
    /// The media bytes.
    pub file: Option<Vec<u8>>,
    /// The `metadata` field, if sent.
    pub metadata: Option<String>,
}

fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/"))
}

/// Reads a multipart form (`file`, `metadata`) or, when `allow_raw` and the request is not
/// multipart, the raw body as the file.
///
/// # Errors
/// `PayloadTooLarge` past `limit` bytes (checked while streaming, before buffering more);
/// `InvalidRequest` for a malformed form, an unknown or repeated field, or a non-UTF-8 metadata.
pub async fn read_upload(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    allow_raw: bool,
) -> Result<Upload, ApiError> {
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        // Multipart framing adds a little; allow 64 KiB of it.
        if len > limit.saturating_add(64 * 1024) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    if !is_multipart(req) {
        if !allow_raw {
            return Err(ApiError::InvalidRequest(
                "expected multipart/form-data with a 'file' part".into(),
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::InvalidRequest(format!("reading body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(Upload {
            file: Some(body),
            metadata: None,
        });
    }
    let mut form = Multipart::new(req.headers(), payload);
    let mut upload = Upload::default();
    let mut total = 0usize;
    while let Some(field) = form.next().await {
        let mut field = field
            .map_err(|e| ApiError::InvalidRequest(format!("malformed multipart body: {e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::InvalidRequest(format!("malformed multipart body: {e}")))?;
            total += chunk.len();
            if total > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            data.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" if upload.file.is_none() => upload.file = Some(data),
            "metadata" if upload.metadata.is_none() => {
                upload.metadata =
                    Some(String::from_utf8(data).map_err(|_| {
                        ApiError::InvalidRequest("metadata must be UTF-8 JSON".into())
                    })?)
            }
            "file" | "metadata" => {
                return Err(ApiError::InvalidRequest(format!(
                    "field '{name}' sent twice"
                )))
            }
            other => {
                return Err(ApiError::InvalidRequest(format!(
                    "unknown multipart field '{other}' (expected 'file' and 'metadata')"
                )))
            }
        }
    }
    Ok(upload)
}
