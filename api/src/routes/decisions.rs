//! `POST /v1/decisions`.

use actix_web::{web, HttpResponse};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::{self, DecisionRequest};
use crate::state::AppState;

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Moderate)?;
    let req: DecisionRequest = super::parse_json(&body)?;
    let out = service::decide(&state, req, &caller.key_id).await?;
    Ok(HttpResponse::Created().json(out))
}

/// `POST /v1/decisions`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(
        "/v1/decisions",
        "POST",
        web::post().to(create),
    ));
}
