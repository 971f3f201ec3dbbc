//! `POST /v1/generate` (render with a registered generator model, signed) and
//! `GET /v1/generators`.

use actix_web::{web, HttpResponse};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::{self, GenerateBody};
use crate::state::AppState;

async fn generate(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Sign)?;
    let req: GenerateBody = super::parse_json(&body)?;
    let out = service::generate(&state, req, &caller.key_id).await?;
    Ok(HttpResponse::Ok()
        .content_type(out.format.mime())
        .insert_header(("Hallmark-Asset-Id", out.asset_id.clone()))
        .insert_header(("Hallmark-Manifest-Label", out.manifest_label.clone()))
        .insert_header(("Hallmark-Watermark-Payload", out.payload.clone()))
        .body(out.bytes))
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
