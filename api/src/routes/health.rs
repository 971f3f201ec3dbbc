//! Liveness and readiness (no authentication).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = crate::openapi::schemas::Health)))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Ready when the database and the cache both answer within 0.8 s (checked concurrently);
/// otherwise 503 problem+json `store_unavailable` naming what is down.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready: database and cache answer", body = crate::openapi::schemas::Ready)))]
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let limit = Duration::from_millis(800);
    let (db, cache) = tokio::join!(state.store.ping_within(limit), state.cache.ping(limit));
    let mut down = Vec::new();
    if db.is_err() {
        down.push("database");
    }
    if cache.is_err() {
        down.push("cache (redis)");
    }
    if !down.is_empty() {
        return Err(ApiError::StoreUnavailable(format!(
            "not ready: {} unavailable",
            down.join(" and ")
        )));
    }
    let detectors: Vec<_> = state
        .detectors
        .as_ref()
        .map(|d| d.models())
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "database": true,
        "cache": state.cache.kind(),
        "media_workers": state.workers.size(),
        "detectors": detectors,
        "signing_identity": if state.identity_is_dev { "development" } else { "configured" },
    })))
}

/// `GET /healthz`, `GET /readyz`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/healthz", "GET", web::get().to(healthz)))
        .service(super::resource("/readyz", "GET", web::get().to(readyz)));
}
