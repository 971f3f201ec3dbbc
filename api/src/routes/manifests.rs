//! `GET /v1/manifests/{manifestId}`: manifest stores Hallmark signed (durable content
//! credentials); also the `getManifestById` route of the C2PA Soft Binding Resolution API
//! (`softbinding.rs`), with its `returnActiveManifest` query.

use actix_web::{web, HttpResponse};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::resolve::{self, ManifestParams};
use crate::state::AppState;

/// A manifest store Hallmark signed (C2PA Soft Binding API `getManifestById`).
#[utoipa::path(get, path = "/v1/manifests/{label}", operation_id = "getManifestById", tag = "soft-binding",
    params(("label" = String, Path, description = "The `urn:c2pa:…` manifest label (raw or percent-encoded)"),
        crate::service::resolve::ManifestParams),
    responses((status = 200, description = "The C2PA manifest store (JUMBF)", content_type = "application/c2pa",
        headers(("Hallmark-Asset-Id" = String, description = "The asset it was signed for")))),
    security(("api_key" = ["verify"])))]
async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    label: web::Path<String>,
    _q: web::Query<ManifestParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Verify)?;
    let m = resolve::manifest_store(&state, &label).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/c2pa")
        .insert_header(("Hallmark-Asset-Id", m.asset_id))
        .body(m.store_bytes))
}

/// `GET /v1/manifests/{manifestId}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(
        "/v1/manifests/{label}",
        "GET",
        web::get().to(get),
    ));
}
