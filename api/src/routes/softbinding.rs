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

/// Manifests whose soft binding (watermark) has this value (`queryByBinding`).
#[utoipa::path(get, path = "/v1/matches/byBinding", operation_id = "queryByBinding", tag = "soft-binding", params(crate::service::resolve::ByBindingParams),
    responses((status = 200, description = "Matches", body = crate::openapi::schemas::SoftBindingQueryResult)),
    security(("api_key" = ["verify"])))]
async fn by_binding_get(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<ByBindingParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Verify)?;
    let out = resolve::by_binding(&state, &q.alg, &q.value, q.max_results).await?;
    Ok(HttpResponse::Ok().json(out))
}

/// As the GET, with `alg` and `value` in the body (`queryByLargeBinding`).
#[utoipa::path(post, path = "/v1/matches/byBinding", operation_id = "queryByLargeBinding", tag = "soft-binding", params(crate::service::resolve::MaxResultsParam),
    request_body = crate::openapi::schemas::SoftBindingQuery,
    responses((status = 200, description = "Matches", body = crate::openapi::schemas::SoftBindingQueryResult)),
    security(("api_key" = ["verify"])))]
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

/// Reads the soft bindings of uploaded content and answers the manifests they name (`uploadFile`).
#[utoipa::path(post, path = "/v1/matches/byContent", operation_id = "uploadFile", tag = "soft-binding", params(crate::service::resolve::ByContentParams),
    request_body(content((crate::openapi::schemas::FileForm = "multipart/form-data"), ("application/octet-stream"))),
    responses((status = 200, description = "Matches", body = crate::openapi::schemas::SoftBindingQueryResult)),
    security(("api_key" = ["verify"])))]
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

/// The soft binding algorithms this service resolves (no key).
#[utoipa::path(get, path = "/v1/services/supportedAlgorithms", operation_id = "getSupportedAlgorithms", tag = "soft-binding",
    responses((status = 200, description = "Algorithms", body = crate::openapi::schemas::SoftBindingAlgList)))]
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
