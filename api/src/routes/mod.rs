//! HTTP routes, one file per resource, each exporting `configure`.

pub mod audit;
pub mod decisions;
pub mod generate;
pub mod health;
pub mod keys;
pub mod manifests;
pub mod metrics;
pub mod models;
pub mod review;
pub mod sign;
pub mod softbinding;
pub mod upload;
pub mod verify;

use actix_web::web;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    sign::configure(cfg);
    generate::configure(cfg);
    verify::configure(cfg);
    decisions::configure(cfg);
    audit::configure(cfg);
    manifests::configure(cfg);
    softbinding::configure(cfg);
    models::configure(cfg);
    review::configure(cfg);
    keys::configure(cfg);
    metrics::configure(cfg);
    crate::openapi::configure(cfg);
}

/// One resource with one route; any other method gets 405 `method_not_allowed` with an
/// `Allow` header naming `allow` (RFC 9110 §15.5.6), not a 404.
pub fn resource(path: &str, allow: &'static str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(move || async move {
            Err::<actix_web::HttpResponse, _>(crate::error::ApiError::MethodNotAllowed(allow))
        }))
}

/// The status and headers of a signed file's response (`200`, its media type,
/// `Hallmark-Asset-Id`, `Hallmark-Manifest-Label`, `Hallmark-Watermark-Payload`, and
/// `Idempotent-Replayed: true` for a replayed response).
pub fn signed_response(out: &crate::service::SignOutput) -> actix_web::HttpResponseBuilder {
    let mut r = actix_web::HttpResponse::Ok();
    r.content_type(out.format.mime())
        .insert_header(("Hallmark-Asset-Id", out.asset_id.clone()))
        .insert_header(("Hallmark-Manifest-Label", out.manifest_label.clone()))
        .insert_header(("Hallmark-Watermark-Payload", out.payload.clone()));
    if out.replayed {
        r.insert_header(("Idempotent-Replayed", "true"));
    }
    r
}

/// Reads and parses a JSON request body of at most `limit` bytes. Call it after the scope
/// check: the body is only read then, so a key without the scope gets 403 whatever it sends
/// (an `actix_web::web::Bytes` argument would be read while the key is looked up, and an
/// over-size body would get 413 first).
///
/// # Errors
/// `PayloadTooLarge`, `RequestTimeout`, `Overloaded` as [`upload::read_body`];
/// `InvalidRequest` for malformed JSON.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    req: &actix_web::HttpRequest,
    payload: web::Payload,
    state: &crate::state::AppState,
    limit: usize,
) -> Result<T, crate::error::ApiError> {
    let body = upload::read_body(req, payload, state, limit, None).await?;
    parse_json_within(&body.bytes, limit)
}

/// Parses a JSON body after authentication and authorisation (so a caller without the scope
/// gets 403, not body-parsing details). Bodies over 64 KiB are refused (413).
///
/// # Errors
/// `PayloadTooLarge` over 64 KiB, `InvalidRequest` for malformed JSON.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, crate::error::ApiError> {
    parse_json_within(body, crate::error::JSON_BODY_LIMIT)
}

/// [`parse_json`] with another size limit (bytes), for routes that take larger bodies.
///
/// # Errors
/// `PayloadTooLarge` over `limit`, `InvalidRequest` for malformed JSON.
pub fn parse_json_within<T: serde::de::DeserializeOwned>(
    body: &[u8],
    limit: usize,
) -> Result<T, crate::error::ApiError> {
    if body.len() > limit {
        return Err(crate::error::ApiError::PayloadTooLarge { limit });
    }
    serde_json::from_slice(body)
        .map_err(|e| crate::error::ApiError::InvalidRequest(format!("invalid JSON body: {e}")))
}
