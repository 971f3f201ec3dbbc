//! `POST /v1/sign`: multipart `file` + JSON `metadata` → the signed file. An optional
//! `Idempotency-Key` header makes retries safe (see [`crate::service::idempotency`]).

use actix_web::{web, HttpRequest, HttpResponse};

use super::upload::read_upload;
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::{self, SignMetadata};
use crate::state::AppState;

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
