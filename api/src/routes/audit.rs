//! `GET /v1/audit/entries` (paged) and `GET /v1/audit/verify` (re-checks the whole chain).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    /// Return entries with `seq > after` (default 0).
    #[serde(default)]
    after: u64,
    /// Page size, 1–1000 (default 100).
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

async fn entries(
    state: web::Data<AppState>,
    caller: Caller,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    if page.after > i64::MAX as u64 {
        return Err(ApiError::InvalidRequest(format!(
            "after must be at most {}",
            i64::MAX
        )));
    }
    if page.limit == 0 || page.limit > 1000 {
        return Err(ApiError::InvalidRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let entries = state
        .store
        .list_audit_entries(page.after, page.limit)
        .await?;
    let next = if entries.len() == page.limit as usize {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(json!({ "entries": entries, "next_after": next })))
}

async fn verify(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    let report = state.store.verify_audit_chain().await?;
    Ok(HttpResponse::Ok().json(report))
}

/// `GET /v1/audit/entries`, `GET /v1/audit/verify`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(
        "/v1/audit/entries",
        "GET",
        web::get().to(entries),
    ))
    .service(super::resource(
        "/v1/audit/verify",
        "GET",
        web::get().to(verify),
    ));
}
