//! Reading request bodies: multipart fields or a raw body, never past the configured size
//! limit, the global upload budget, the per-key upload limit, the minimum upload rate or the
//! upload timeout (see [`crate::upload_budget`]).

use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt as _;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upload_budget::{BodyCharge, RateFloor};

/// An upload: the `file` bytes and the optional `metadata` JSON text.
#[derive(Debug, Default)]
pub struct Upload {
    /// The media bytes.
    pub file: Option<Vec<u8>>,
    /// The `metadata` field, if sent.
    pub metadata: Option<String>,
    /// The upload budget the body holds until the upload is dropped.
    _charge: Option<BodyCharge>,
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

/// A request body read within its limits, and the share of the upload budget it holds (kept
/// until the body is dropped with the request).
#[derive(Debug)]
pub struct Body {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The budget the bytes are charged to; returned on drop.
    pub charge: BodyCharge,
}

/// Reads a whole request body: never past `limit` bytes (413, checked against
/// `Content-Length` before anything is read, then while streaming), never past the global
/// upload budget (503 `overloaded`), never slower than `server.min_upload_bytes_per_second`
/// after the grace period and never longer than `server.upload_timeout_seconds` (408). With
/// `key`, the body takes one of that key's concurrent upload slots (429 beyond
/// `server.max_uploads_per_key`).
///
/// # Errors
/// As above; `InvalidRequest` when the connection fails mid-body.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    limit: usize,
    key: Option<&str>,
) -> Result<Body, ApiError> {
    let timeout = Duration::from_secs(state.settings.server.upload_timeout_seconds);
    let budget = &state.uploads;
    let mut charge = budget.start(key)?;
    if let Some(len) = content_length(req) {
        if len > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        charge.reserve_total(len as u64)?;
    }
    let floor = RateFloor::new(budget);
    let read = async {
        let mut payload = payload;
        let mut body = Vec::new();
        loop {
            let next = match floor.deadline(body.len() as u64) {
                Some(at) => match tokio::time::timeout_at(at.into(), payload.next()).await {
                    Ok(n) => n,
                    Err(_) => {
                        crate::metrics::rate_limited("slow_body");
                        return Err(ApiError::RequestTimeout(floor.elapsed_secs()));
                    }
                },
                None => payload.next().await,
            };
            let Some(chunk) = next else { break };
            let chunk =
                chunk.map_err(|e| ApiError::InvalidRequest(format!("reading body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            charge.reserve_total((body.len() + chunk.len()) as u64)?;
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(bytes)) => Ok(Body { bytes, charge }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::RequestTimeout(timeout.as_secs())),
    }
}

fn content_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads a multipart form (`file`, `metadata`) or, when `allow_raw` and the request is not
/// multipart, the raw body as the file, for `caller` (whose scope the route has checked). The
/// body is buffered (bounded, see [`read_body`]; it takes one of the caller's concurrent upload
/// slots) before parsing, so a form without its closing boundary is rejected at once instead of
/// waiting for more data.
///
/// # Errors
/// `PayloadTooLarge` past `server.max_upload_bytes`; `RequestTimeout`, `Overloaded`,
/// `RateLimited` as [`read_body`]; `PayloadTooLarge` for a `metadata` part over 64 KiB (the
/// JSON body limit); `InvalidRequest` for a malformed form, an unknown or repeated field, or a
/// non-UTF-8 metadata.
pub async fn read_upload(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    caller: &Caller,
    allow_raw: bool,
) -> Result<Upload, ApiError> {
    let limit = state.settings.server.max_upload_bytes;
    let boundary = multipart_boundary(req)?;
    if boundary.is_none() && !allow_raw {
        return Err(ApiError::InvalidRequest(
            "expected multipart/form-data with a 'file' part".into(),
        ));
    }
    let framing = if boundary.is_some() { FRAMING } else { 0 };
    let body = read_body(
        req,
        payload,
        state,
        limit.saturating_add(framing),
        Some(&caller.key_id),
    )
    .await
    .map_err(|e| match e {
        // The limit the client is told is the file's, framing aside.
        ApiError::PayloadTooLarge { .. } => ApiError::PayloadTooLarge { limit },
        e => e,
    })?;
    let Some(boundary) = boundary else {
        return Ok(Upload {
            file: Some(body.bytes),
            metadata: None,
            _charge: Some(body.charge),
        });
    };
    let mut upload = parse_form(req, &boundary, body.bytes, limit).await?;
    upload._charge = Some(body.charge);
    Ok(upload)
}

async fn parse_form(
    req: &HttpRequest,
    boundary: &str,
    body: Vec<u8>,
    limit: usize,
) -> Result<Upload, ApiError> {
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
