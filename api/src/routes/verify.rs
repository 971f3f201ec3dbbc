//! `POST /v1/verify` (multipart `file` or a raw body), `GET /v1/verifications` (listing with
//! filters) and `GET /v1/verifications/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::upload::read_upload;
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service;
use crate::state::AppState;

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
