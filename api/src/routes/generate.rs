//! `POST /v1/generate` (render with a registered generator model, signed; an optional
//! `Idempotency-Key` makes retries safe) and `GET /v1/generators`.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::{self, GenerateBody};
use crate::state::AppState;

async fn generate(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Sign)?;
    let idem = super::decisions::idempotency_key(&req)?;
    let body: GenerateBody =
        super::read_json(&req, payload, &state, crate::error::JSON_BODY_LIMIT).await?;
    let out = service::generate_idempotent(&state, body, &caller.key_id, idem).await?;
    Ok(super::signed_response(&out).body(out.bytes))
}

async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Sign)?;
    let list = state
        .generators
        .as_ref()
        .map(|g| g.list())
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "generators": list })))
}

/// `POST /v1/generate`, `GET /v1/generators`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(
        "/v1/generate",
        "POST",
        web::post().to(generate),
    ))
    .service(super::resource(
        "/v1/generators",
        "GET",
        web::get().to(list),
    ));
}
