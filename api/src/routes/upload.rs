//! Reading uploads: multipart fields or a raw body, never past the configured size limit and
//! never for longer than the configured upload timeout.

use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt as _;

use crate::error::ApiError;
use crate::settings::ServerSettings;

/// An upload: the `file` bytes and the optional `metadata` JSON text.
#[derive(Debug, Default)]
pub struct Upload {
    /// The media bytes.
    pub file: Option<Vec<u8>>,
    /// The `metadata` field, if sent.
    pub metadata: Option<String>,
}

impl Upload {
    /// The `file` part, required.
    ///
    /// # Errors
    /// `InvalidRequest` when it was not sent.
    pub fn take_file(&mut self) -> Result<Vec<u8>, ApiError> {
        self.file
            .take()
            .ok_or_else(|| ApiError::InvalidRequest("missing multipart field 'file'".into()))
    }
}

/// Multipart framing allowance on top of the file size limit.
const FRAMING: usize = 64 * 1024;

fn multipart_boundary(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(ct) = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    if !ct.to_ascii_lowercase().starts_with("multipart/") {
        return Ok(None);
    }
    // A multipart type without its boundary can't be parsed; reading the body as a raw
    // upload instead would sign or verify the multipart framing bytes.
    let b = ct
        .to_ascii_lowercase()
        .find("boundary=")
        .and_then(|idx| ct[idx + "boundary=".len()..].split(';').next())
        .map(|b| b.trim().trim_matches('"').to_owned())
        .ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "Content-Type '{}' has no boundary parameter",
                ct.chars().take(100).collect::<String>()
            ))
        })?;
    Ok(Some(b))
}

async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidRequest(format!("reading body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads a multipart form (`file`, `metadata`) or, when `allow_raw` and the request is not
/// multipart, the raw body as the file. The body is buffered (bounded) before parsing, so a
/// form without its closing boundary is rejected at once instead of waiting for more data.
///
/// # Errors
/// `PayloadTooLarge` past `server.max_upload_bytes` (checked while streaming); `RequestTimeout`
/// when the body does not arrive within `server.upload_timeout_seconds`, or for a `metadata`
/// part over 64 KiB (the JSON body limit); `InvalidRequest` for a malformed form, an unknown or
/// repeated field, or a non-UTF-8 metadata.
pub async fn read_upload(
    req: &HttpRequest,
    payload: web::Payload,
    server: &ServerSettings,
    allow_raw: bool,
) -> Result<Upload, ApiError> {
    let (limit, timeout) = (
        server.max_upload_bytes,
        Duration::from_secs(server.upload_timeout_seconds),
    );
    match tokio::time::timeout(timeout, read_upload_inner(req, payload, limit, allow_raw)).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::RequestTimeout(timeout.as_secs())),
    }
}

async fn read_upload_inner(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    allow_raw: bool,
) -> Result<Upload, ApiError> {
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit.saturating_add(FRAMING) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let Some(boundary) = multipart_boundary(req)? else {
        if !allow_raw {
            return Err(ApiError::InvalidRequest(
                "expected multipart/form-data with a 'file' part".into(),
            ));
        }
        return Ok(Upload {
            file: Some(read_body(payload, limit).await?),
            metadata: None,
        });
    };
    let body = read_body(payload, limit.saturating_add(FRAMING)).await?;
    let closing = format!("--{boundary}--");
    if boundary.is_empty() || !body.windows(closing.len()).any(|w| w == closing.as_bytes()) {
        return Err(ApiError::InvalidRequest(
            "malformed multipart body: missing the closing boundary".into(),
        ));
    }
    let stream = futures_util::stream::iter([Ok::<Bytes, actix_web::error::PayloadError>(
        Bytes::from(body),
    )]);
    let mut form = Multipart::new(req.headers(), stream);
    let mut upload = Upload::default();
    let mut file_bytes = 0usize;
    while let Some(field) = form.next().await {
        let mut field = field
            .map_err(|e| ApiError::InvalidRequest(format!("malformed multipart body: {e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::InvalidRequest(format!("malformed multipart body: {e}")))?;
            data.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" if upload.file.is_none() => {
                file_bytes = data.len();
                upload.file = Some(data)
            }
            "metadata" if upload.metadata.is_none() => {
                // The metadata is JSON like any other request body: same 64 KiB cap, checked
                // before it is decoded or parsed.
                if data.len() > crate::error::JSON_BODY_LIMIT {
                    return Err(ApiError::PayloadTooLarge {
                        limit: crate::error::JSON_BODY_LIMIT,
                    });
                }
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
                    "unknown multipart field '{other}' (expected 'file', and 'metadata' on sign)"
                )))
            }
        }
    }
    if file_bytes > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(upload)
}
