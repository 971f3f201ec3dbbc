//! `GET /v1/models`: the loaded detector models with their calibration and statistics.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// The loaded detector models with calibration and statistics.
#[utoipa::path(get, path = "/v1/models", tag = "verify",
    responses((status = 200, description = "Models", body = crate::openapi::schemas::ModelList)),
    security(("api_key" = ["verify"])))]
async fn list_models(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Verify)?;
    let models = state
        .detectors
        .as_ref()
        .map(|d| d.models())
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({
        "enabled": state.detectors.is_some(),
        "models": models,
    })))
}

/// `GET /v1/models` (scope `verify`): name, version, modality, execution provider,
/// preprocessing, calibration (method, thresholds, the false-positive rate they were set at,
/// what they were fitted on), batching and latency statistics.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(
        "/v1/models",
        "GET",
        web::get().to(list_models),
    ));
}
