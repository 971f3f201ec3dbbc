//! `/v1/keys` (scope `admin`): list, create, revoke, rotate API keys. The logic, and the audit
//! log entries each change writes, live in [`crate::service::keys`].

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, JSON_BODY_LIMIT};
use crate::service::keys::{self, CreateKeyRequest, RotateKeyRequest};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// List revoked keys too.
    #[serde(default)]
    include_revoked: bool,
}

/// API keys (never their secrets).
#[utoipa::path(get, path = "/v1/keys", operation_id = "listKeys", tag = "keys", params(ListQuery),
    responses((status = 200, description = "Keys", body = crate::openapi::schemas::KeyList)),
    security(("api_key" = ["admin"])))]
async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let keys = keys::list(&state, q.include_revoked).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "keys": keys })))
}

/// Creates a key; the secret is in this response only.
#[utoipa::path(post, path = "/v1/keys", operation_id = "createKey", tag = "keys", request_body = crate::service::keys::CreateKeyRequest,
    responses((status = 201, description = "Created", body = crate::service::keys::CreatedKey)),
    security(("api_key" = ["admin"])))]
async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let req: CreateKeyRequest = super::read_json(&http, payload, &state, JSON_BODY_LIMIT).await?;
    let out = keys::create(&state, &req, &caller.key_id).await?;
    Ok(HttpResponse::Created().json(out))
}

/// Revokes a key: its next request gets 401.
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "keys", params(("id" = String, Path, description = "Key id")),
    responses((status = 200, description = "Revoked", body = crate::service::keys::RevokedKey)),
    security(("api_key" = ["admin"])))]
async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(HttpResponse::Ok().json(keys::revoke(&state, &id, &caller.key_id).await?))
}

/// Replaces a key by a new one with the same name, scopes and expiry.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "keys", params(("id" = String, Path, description = "Key id")),
    request_body(content = Option<crate::service::keys::RotateKeyRequest>, description = "Optional"),
    responses((status = 201, description = "Rotated", body = crate::service::keys::RotatedKey)),
    security(("api_key" = ["admin"])))]
async fn rotate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let body = super::upload::read_body(&http, payload, &state, JSON_BODY_LIMIT, None)
        .await?
        .bytes;
    let req: RotateKeyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateKeyRequest::default()
    } else {
        super::parse_json(&body)?
    };
    let out = keys::rotate(&state, &id, &req, &caller.key_id).await?;
    Ok(HttpResponse::Created().json(out))
}

/// `GET|POST /v1/keys`, `POST /v1/keys/{id}/revoke`, `POST /v1/keys/{id}/rotate`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/keys")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::MethodNotAllowed("GET, POST"))
            })),
    )
    .service(super::resource(
        "/v1/keys/{id}/revoke",
        "POST",
        web::post().to(revoke),
    ))
    .service(super::resource(
        "/v1/keys/{id}/rotate",
        "POST",
        web::post().to(rotate),
    ));
}
