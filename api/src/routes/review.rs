//! `GET /v1/review/next` (scope moderate): lease the next verification that needs a human.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// Query: `lease_seconds` (1–3600, default 300).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NextQuery {
    lease_seconds: Option<u32>,
}

async fn next(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<NextQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Moderate)?;
    let lease =
        crate::service::review::lease_next(&state, &caller.key_id, q.lease_seconds.unwrap_or(300))
            .await?;
    Ok(match lease {
        None => HttpResponse::NoContent().finish(),
        Some(l) => HttpResponse::Ok().json(serde_json::json!({
            "verification_id": l.verification_id,
            "verdict": l.verdict,
            "lease_expires_at": crate::service::rfc3339(l.expires_at),
        })),
    })
}

/// `GET /v1/review/next`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(
        "/v1/review/next",
        "GET",
        web::get().to(next),
    ));
}
