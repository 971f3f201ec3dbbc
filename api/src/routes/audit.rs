//! `GET /v1/audit/*` (scope `audit`): the signed checkpoint, the log's public key,
//! inclusion and consistency proofs, the entries, and a full re-verification.

use actix_web::{web, HttpResponse};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::audit::{self as svc, ConsistencyQuery, EntriesQuery, InclusionQuery};
use crate::state::AppState;

const NOTE_TYPE: &str = "text/plain; charset=utf-8";

/// A page of log leaves.
#[utoipa::path(get, path = "/v1/audit/entries", tag = "audit", params(crate::service::audit::EntriesQuery),
    responses((status = 200, description = "Entries", body = crate::openapi::schemas::EntryList)),
    security(("api_key" = ["audit"])))]
async fn entries(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<EntriesQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok().json(svc::entries(&state, &q).await?))
}

/// Re-verifies the whole stored log against its signed checkpoints.
#[utoipa::path(get, path = "/v1/audit/verify", operation_id = "verifyAuditLog", tag = "audit",
    responses((status = 200, description = "The chain report: entries checked, checkpoints, first problem if any", body = serde_json::Value)),
    security(("api_key" = ["audit"])))]
async fn verify(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok().json(state.audit.verify().await?))
}

/// The latest signed checkpoint (C2SP tlog-checkpoint in a signed note).
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, description = "Signed note", body = String, content_type = "text/plain")),
    security(("api_key" = ["audit"])))]
async fn checkpoint(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    let cp = state
        .audit
        .latest_checkpoint()
        .await?
        .ok_or(ApiError::NotFound("checkpoint"))?;
    Ok(HttpResponse::Ok().content_type(NOTE_TYPE).body(cp.note))
}

/// The log's note verifier key (C2SP signed-note `vkey`).
#[utoipa::path(get, path = "/v1/audit/public-key", tag = "audit",
    responses((status = 200, description = "Verifier key line", body = String, content_type = "text/plain")),
    security(("api_key" = ["audit"])))]
async fn public_key(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok()
        .content_type(NOTE_TYPE)
        .body(format!("{}\n", state.audit.verifier().to_vkey())))
}

/// RFC 9162 inclusion proof of a leaf in a tree size.
#[utoipa::path(get, path = "/v1/audit/proof/inclusion", tag = "audit", params(crate::service::audit::InclusionQuery),
    responses((status = 200, description = "Proof", body = crate::openapi::schemas::InclusionProof)),
    security(("api_key" = ["audit"])))]
async fn inclusion(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<InclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok().json(svc::inclusion(&state, &q).await?))
}

/// RFC 9162 consistency proof between two tree sizes.
#[utoipa::path(get, path = "/v1/audit/proof/consistency", tag = "audit", params(crate::service::audit::ConsistencyQuery),
    responses((status = 200, description = "Proof", body = crate::openapi::schemas::ConsistencyProof)),
    security(("api_key" = ["audit"])))]
async fn consistency(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok().json(svc::consistency(&state, &q).await?))
}

/// Registers the audit routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let routes: [(&str, actix_web::Route); 6] = [
        ("/v1/audit/entries", web::get().to(entries)),
        ("/v1/audit/verify", web::get().to(verify)),
        ("/v1/audit/checkpoint", web::get().to(checkpoint)),
        ("/v1/audit/public-key", web::get().to(public_key)),
        ("/v1/audit/proof/inclusion", web::get().to(inclusion)),
        ("/v1/audit/proof/consistency", web::get().to(consistency)),
    ];
    for (path, route) in routes {
        cfg.service(super::resource(path, "GET", route));
    }
}
