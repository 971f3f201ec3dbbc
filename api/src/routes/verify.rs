//! `POST /v1/verify` (multipart `file` or a raw body), `GET /v1/verifications` (listing with
//! filters) and `GET /v1/verifications/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::upload::read_upload;
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service;
use crate::state::AppState;

/// Verifies a file (multipart `file` or the raw body): C2PA, watermark, detectors, verdict. The report is stored.
#[utoipa::path(post, path = "/v1/verify", operation_id = "verify", tag = "verify",
    request_body(content((crate::openapi::schemas::FileForm = "multipart/form-data"), ("application/octet-stream"))),
    responses((status = 201, description = "The stored report", body = crate::report::VerificationReport,
        headers(("Location" = String, description = "/v1/verifications/{id}")))),
    security(("api_key" = ["verify"])))]
async fn verify(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Verify)?;
    let mut upload = read_upload(&req, payload, &state, &caller, true).await?;
    let file = upload.take_file()?;
    let report = service::verify(&state, file, &caller.key_id).await?;
    // Serialise through a JSON value, as stored, so the response and GET are byte-identical.
    let body = serde_json::to_value(&report).map_err(ApiError::internal)?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/verifications/{}", report.id)))
        .json(body))
}

/// A stored verification report.
#[utoipa::path(get, path = "/v1/verifications/{id}", tag = "verify",
    params(("id" = String, Path, description = "Verification id (UUID, any case)")),
    responses((status = 200, description = "The report, as first returned", body = crate::report::VerificationReport)),
    security(("api_key" = ["verify"])))]
async fn get_verification(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Verify)?;
    let id = crate::service::parse_verification_id(&id)?;
    let record = state
        .store
        .get_verification(&id)
        .await?
        .ok_or(ApiError::NotFound("verification"))?;
    Ok(HttpResponse::Ok().json(record.report))
}

/// Stored verifications, newest first, with filters (the review backlog: `decided=false`).
#[utoipa::path(get, path = "/v1/verifications", tag = "verify",
    params(crate::service::VerificationsQuery),
    responses((status = 200, description = "A page", body = crate::openapi::schemas::VerificationList)),
    security(("api_key" = ["verify"])))]
async fn list_verifications(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<service::VerificationsQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Verify)?;
    Ok(HttpResponse::Ok().json(service::list_verifications(&state, &q).await?))
}

/// `POST /v1/verify`, `GET /v1/verifications`, `GET /v1/verifications/{id}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(
        "/v1/verify",
        "POST",
        web::post().to(verify),
    ))
    .service(super::resource(
        "/v1/verifications",
        "GET",
        web::get().to(list_verifications),
    ))
    .service(super::resource(
        "/v1/verifications/{id}",
        "GET",
        web::get().to(get_verification),
    ));
}
