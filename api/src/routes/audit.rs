//! `GET /v1/audit/*` (scope `audit`): the signed checkpoint, the log's public key,
//! inclusion and consistency proofs, the entries, and a full re-verification.

use actix_web::{web, HttpResponse};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::audit::{self as svc, ConsistencyQuery, EntriesQuery, InclusionQuery};
use crate::state::AppState;

const NOTE_TYPE: &str = "text/plain; charset=utf-8";

async fn entries(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<EntriesQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok().json(svc::entries(&state, &q).await?))
}

async fn verify(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok().json(state.audit.verify().await?))
}

async fn checkpoint(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    let cp = state
        .audit
        .latest_checkpoint()
        .await?
        .ok_or(ApiError::NotFound("checkpoint"))?;
    Ok(HttpResponse::Ok().content_type(NOTE_TYPE).body(cp.note))
}

async fn public_key(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok()
        .content_type(NOTE_TYPE)
        .body(format!("{}\n", state.audit.verifier().to_vkey())))
}

async fn inclusion(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<InclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok().json(svc::inclusion(&state, &q).await?))
}

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
