//! The C2PA Soft Binding Resolution API (C2PA 2.2 "C2PA Soft Binding API" §1.4, OpenAPI
//! 1.0.0) under `/v1`: `GET`/`POST /v1/matches/byBinding`, `POST /v1/matches/byContent` and
//! `GET /v1/services/supportedAlgorithms`; `GET /v1/manifests/{manifestId}` is in
//! `manifests.rs`. The spec's `fetch:manifests` scope is Hallmark's `verify`;
//! `supportedAlgorithms` needs no key (the spec gives it no security requirement).

use actix_web::{web, HttpRequest, HttpResponse};

use super::upload::read_upload;
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::resolve::{self, ByBindingParams, ByContentParams, MaxResultsParam};
use crate::state::AppState;
use hallmark_provenance::soft_binding::{supported_algorithms, SoftBindingQuery};

async fn by_binding_get(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<ByBindingParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Verify)?;
    let out = resolve::by_binding(&state, &q.alg, &q.value, q.max_results).await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn by_binding_post(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<MaxResultsParam>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Verify)?;
    let query: SoftBindingQuery =
        super::read_json(&req, payload, &state, crate::error::JSON_BODY_LIMIT).await?;
    let out = resolve::by_binding(&state, &query.alg, &query.value, q.max_results).await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn by_content(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<ByContentParams>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Verify)?;
    let mut upload = read_upload(&req, payload, &state, &caller, true).await?;
    let out = resolve::by_content(&state, upload.take_file()?, &q).await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn algorithms() -> HttpResponse {
    HttpResponse::Ok().json(supported_algorithms())
}

/// The soft binding resolution routes (see the module docs).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/matches/byBinding")
            .route(web::get().to(by_binding_get))
            .route(web::post().to(by_binding_post))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::MethodNotAllowed("GET, POST"))
            })),
    )
    .service(super::resource(
        "/v1/matches/byContent",
        "POST",
        web::post().to(by_content),
    ))
    .service(super::resource(
        "/v1/services/supportedAlgorithms",
        "GET",
        web::get().to(algorithms),
    ));
}
