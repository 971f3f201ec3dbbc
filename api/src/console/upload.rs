//! The console's upload form: a multipart body with a `csrf` field and a `file` field (with
//! the browser's file name), read within `server.max_upload_bytes` and
//! `server.upload_timeout_seconds`.

use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt as _;

use crate::error::ApiError;
use crate::settings::ServerSettings;

/// Longest CSRF field accepted (tokens are 43 characters).
const MAX_CSRF: usize = 256;

/// A console upload.
#[derive(Debug, Default)]
pub struct ConsoleUpload {
    /// The `csrf` field.
    pub csrf: Option<String>,
    /// The file name the browser sent (at most 255 characters kept), or empty.
    pub filename: String,
    /// The file.
    pub file: Option<Vec<u8>>,
}

/// Reads the form. A body that is not multipart reads as no fields (the CSRF check then
/// refuses it).
///
/// # Errors
/// `PayloadTooLarge` past the upload limit, `RequestTimeout`, `InvalidRequest` for a malformed
/// form or an unknown or repeated field.
pub async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    server: &ServerSettings,
) -> Result<ConsoleUpload, ApiError> {
    let is_multipart = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Ok(ConsoleUpload::default());
    }
    let timeout = Duration::from_secs(server.upload_timeout_seconds);
    match tokio::time::timeout(timeout, read_inner(req, payload, server.max_upload_bytes)).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::RequestTimeout(timeout.as_secs())),
    }
}

async fn read_inner(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<ConsoleUpload, ApiError> {
    let mut form = Multipart::new(req.headers(), payload);
    let mut out = ConsoleUpload::default();
    let malformed = |e: actix_multipart::MultipartError| {
        ApiError::InvalidRequest(format!("malformed multipart body: {e}"))
    };
    while let Some(field) = form.next().await {
        let mut field = field.map_err(malformed)?;
        let name = field.name().unwrap_or_default().to_owned();
        let cap = match name.as_str() {
            "csrf" if out.csrf.is_none() => MAX_CSRF,
            "file" if out.file.is_none() => limit,
            "csrf" | "file" => {
                return Err(ApiError::InvalidRequest(format!(
                    "field '{name}' sent twice"
                )))
            }
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(ApiError::InvalidRequest(format!(
                    "unknown form field '{shown}' (expected 'csrf' and 'file')"
                )));
            }
        };
        if name == "file" {
            out.filename = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .map(|f| f.chars().take(255).collect())
                .unwrap_or_default();
        }
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(malformed)?;
            if data.len() + chunk.len() > cap {
                return Err(if name == "file" {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::InvalidRequest("csrf field too long".into())
                });
            }
            data.extend_from_slice(&chunk);
        }
        if name == "file" {
            out.file = Some(data);
        } else {
            out.csrf = Some(String::from_utf8_lossy(&data).into_owned());
        }
    }
    Ok(out)
}
