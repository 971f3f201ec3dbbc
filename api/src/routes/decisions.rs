//! `POST /v1/decisions` (scope moderate) and `GET /v1/decisions` (scope audit).

use actix_web::{web, HttpResponse};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::{self, DecisionRequest, DecisionsQuery};
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

async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<DecisionsQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok().json(service::list_decisions(&state, &q).await?))
}

/// `POST /v1/decisions`, `GET /v1/decisions`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/decisions")
            .route(web::post().to(create))
            .route(web::get().to(list))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::MethodNotAllowed("GET, POST"))
            })),
    );
}
