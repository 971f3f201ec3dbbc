//! `GET /v1/review/next` (scope moderate): lease the next verification that needs a human.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// Query: `lease_seconds` (1–3600, default 300).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct NextQuery {
    /// Lease length in seconds, 1–3600 (default 300).
    lease_seconds: Option<u32>,
}

/// Leases the next verification awaiting review to the caller.
#[utoipa::path(get, path = "/v1/review/next", tag = "decisions", params(NextQuery),
    responses((status = 200, description = "Leased", body = crate::openapi::schemas::ReviewLease),
        (status = 204, description = "Nothing to review")),
    security(("api_key" = ["moderate"])))]
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
