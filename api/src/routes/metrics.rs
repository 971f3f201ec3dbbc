//! `GET /metrics`: Prometheus text exposition (see [`crate::metrics`]). No API key; when
//! `metrics.token` is set, the scraper sends `Authorization: Bearer <token>`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

/// Prometheus text exposition (no API key; `metrics.token` when set).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain; version=0.0.4")),
    security((), ("metrics_token" = [])))]
async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let s = &state.settings.metrics;
    if !s.enabled {
        return Err(ApiError::NotFound("route"));
    }
    let token = s.token.trim();
    if !token.is_empty() {
        let sent = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .unwrap_or_default();
        // Compare digests: equal-length inputs, no early exit on the secret's bytes.
        let digest = |v: &str| crate::service::sha256_hex(v.as_bytes());
        if digest(sent) != digest(token) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(crate::metrics::render(&state).await))
}

/// `GET /metrics`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/metrics", "GET", web::get().to(metrics)));
}
