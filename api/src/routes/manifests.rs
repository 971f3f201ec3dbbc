//! `GET /v1/manifests/{label}`: manifest stores Hallmark signed (durable content credentials).

use actix_web::{web, HttpResponse};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::state::AppState;

async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    label: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Verify)?;
    let m = state
        .store
        .get_manifest(&label)
        .await?
        .ok_or(ApiError::NotFound("manifest"))?;
    Ok(HttpResponse::Ok()
        .content_type("application/c2pa")
        .insert_header(("Hallmark-Asset-Id", m.asset_id))
        .body(m.store_bytes))
}

/// `GET /v1/manifests/{label}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(
        "/v1/manifests/{label}",
        "GET",
        web::get().to(get),
    ));
}
