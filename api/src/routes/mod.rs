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
