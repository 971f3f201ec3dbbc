//! HTTP routes, one file per resource, each exporting `configure`.

pub mod audit;
pub mod decisions;
pub mod generate;
pub mod health;
pub mod manifests;
pub mod sign;
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
}

/// Parses a JSON body after authentication and authorisation (so a caller without the scope
/// gets 403, not body-parsing details). Bodies over 64 KiB are refused.
///
/// # Errors
/// `InvalidRequest` for oversize or malformed JSON.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, crate::error::ApiError> {
    if body.len() > 64 * 1024 {
        return Err(crate::error::ApiError::InvalidRequest(
            "JSON body larger than 64 KiB".into(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| crate::error::ApiError::InvalidRequest(format!("invalid JSON body: {e}")))
}
