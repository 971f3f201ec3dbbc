//! Hallmark service: HTTP API (actix-web) and CLI over one set of domain functions.
//!
//! This is the only crate that sees actix-web. Handlers are thin: extract, call one function in
//! [`service`], map the result; every error goes through [`error::ApiError`].

pub mod audit_tools;
pub mod auth;
pub mod batch;
pub mod console;
pub mod detectors_cli;
pub mod error;
pub mod keys_cli;
pub mod metrics;
pub mod openapi;
pub mod paths;
pub mod ratelimit;
pub mod report;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod service;
pub mod settings;
pub mod state;
pub mod tools;
pub mod upload_budget;
pub mod worker;
