//! Liveness and readiness (no authentication).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.store.ping().await.is_ok();
    let detectors: Vec<_> = state
        .detectors
        .as_ref()
        .map(|d| d.models())
        .unwrap_or_default();
    let body = json!({
        "status": if db { "ready" } else { "degraded" },
        "database": db,
        "detectors": detectors,
        "signing_identity": if state.identity_is_dev { "development" } else { "configured" },
    });
    if db {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /healthz`, `GET /readyz`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/healthz", "GET", web::get().to(healthz)))
        .service(super::resource("/readyz", "GET", web::get().to(readyz)));
}
