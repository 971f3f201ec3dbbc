//! `POST /v1/sign`: multipart `file` + JSON `metadata` → the signed file. An optional
//! `Idempotency-Key` header makes retries safe (see [`crate::service::idempotency`]).

use actix_web::{web, HttpRequest, HttpResponse};

use super::upload::read_upload;
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::{self, SignMetadata};
use crate::state::AppState;

/// Watermarks and C2PA-signs an uploaded file; the response is the signed file, same format.
#[utoipa::path(post, path = "/v1/sign", tag = "sign",
    request_body(content = crate::openapi::schemas::SignForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "The signed file (same media type as the upload)",
        content(("image/jpeg"), ("image/png"), ("image/webp"), ("audio/wav"), ("audio/mpeg"), ("audio/mp4")),
        headers(("Hallmark-Asset-Id" = String, description = "New asset id (UUID v7)"),
            ("Hallmark-Manifest-Label" = String, description = "The C2PA manifest label (urn:c2pa:…)"),
            ("Hallmark-Watermark-Payload" = String, description = "Hex watermark payload"),
            ("Content-Disposition" = String, description = "attachment; filename=\"{asset id}.{ext}\"")))),
    security(("api_key" = ["sign"])))]
async fn sign(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Sign)?;
    let idem = super::decisions::idempotency_key(&req)?;
    let mut upload = read_upload(&req, payload, &state, &caller, false).await?;
    let file = upload.take_file()?;
    let metadata: SignMetadata =
        serde_json::from_str(upload.metadata.as_deref().ok_or_else(|| {
            ApiError::InvalidRequest("missing multipart field 'metadata'".into())
        })?)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid metadata JSON: {e}")))?;
    let out = service::sign_idempotent(&state, file, metadata, &caller.key_id, idem).await?;
    Ok(super::signed_response(&out)
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"{}.{}\"",
                out.asset_id,
                out.format.extension()
            ),
        ))
        .body(out.bytes))
}

/// `POST /v1/sign`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/sign", "POST", web::post().to(sign)));
}
