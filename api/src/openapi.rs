//! The API description: an OpenAPI 3.1 document generated from the handlers' `#[utoipa::path]`
//! annotations and the request and response types (utoipa 5), served at `GET /openapi.json`,
//! with Swagger UI (5.17, the `utoipa-swagger-ui-vendored` dist files compiled into the binary:
//! nothing is fetched at build or run time) at `/docs/`.
//!
//! Errors are documented per operation from one table, [`problem_codes`]: each operation lists
//! the RFC 9457 problem+json responses it can give, grouped by status, with the stable `code`s
//! of [`ApiError`] (the `Problem` schema's `code` enum is built from [`ApiError::catalogue`]).
//! Authenticated operations carry the `api_key` security requirement with the scope they need
//! (OpenAPI 3.1 allows role names in a non-OAuth requirement).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::error::ApiError;
use crate::routes;

/// Media type of problem responses (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The document's root: every route of [`crate::routes::configure`] (the `console` pages are
/// HTML for people and are left out).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hallmark",
        description = "Content provenance and synthetic-media detection: sign (invisible keyed \
            watermark + C2PA manifest), verify (C2PA validation, watermark detection, ONNX \
            detectors, one report with a verdict) and a verifiable decision log (RFC 9162 \
            Merkle tree, signed C2SP checkpoints). Errors are RFC 9457 problem+json with a \
            stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::sign::sign,
        routes::generate::generate,
        routes::generate::list,
        routes::verify::verify,
        routes::verify::list_verifications,
        routes::verify::get_verification,
        routes::decisions::create,
        routes::decisions::list,
        routes::decisions::create_batch,
        routes::audit::entries,
        routes::audit::verify,
        routes::audit::checkpoint,
        routes::audit::public_key,
        routes::audit::inclusion,
        routes::audit::consistency,
        routes::manifests::get,
        routes::softbinding::by_binding_get,
        routes::softbinding::by_binding_post,
        routes::softbinding::by_content,
        routes::softbinding::algorithms,
        routes::models::list_models,
        routes::review::next,
        routes::keys::list,
        routes::keys::create,
        routes::keys::revoke,
        routes::keys::rotate,
        routes::metrics::metrics,
        openapi_json,
        docs_root,
        docs,
    ),
    components(schemas(schemas::Problem)),
    modifiers(&SecuritySchemes, &Problems),
    tags(
        (name = "health", description = "Liveness and readiness (no key)"),
        (name = "sign", description = "Watermark and C2PA-sign media (scope `sign`)"),
        (name = "verify", description = "Verify media; stored reports (scope `verify`)"),
        (name = "decisions", description = "Moderation decisions, each a leaf of the audit log"),
        (name = "audit", description = "The transparency log: checkpoints, proofs, entries (scope `audit`)"),
        (name = "soft-binding", description = "C2PA Soft Binding Resolution API (C2PA 2.2)"),
        (name = "keys", description = "API keys (scope `admin`)"),
        (name = "operations", description = "Metrics and this description"),
    )
)]
pub struct ApiDoc;

pub mod schemas;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("hm_…")
                    .description(Some(
                        "An API key (`hallmark keys create`, `POST /v1/keys`) as \
                         `Authorization: Bearer <key>`. The requirement lists the scope the \
                         operation needs.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`metrics.token`, when set."))
                    .build(),
            ),
        );
    }
}

/// The problem codes each operation can answer, by `(method, path)` as in the document. Every
/// authenticated operation also gets `unauthorized`, `insufficient_scope`, `rate_limited` and
/// `store_unavailable`; every operation `method_not_allowed` and `internal`.
pub fn problem_codes(method: &str, path: &str) -> &'static [&'static str] {
    const UPLOAD: &[&str] = &[
        "invalid_request",
        "payload_too_large",
        "unsupported_media_type",
        "corrupt_media",
        "media_limit_exceeded",
        "request_timeout",
        "overloaded",
    ];
    const SIGN: &[&str] = &[
        "invalid_request",
        "payload_too_large",
        "unsupported_media_type",
        "corrupt_media",
        "media_limit_exceeded",
        "media_too_small",
        "request_timeout",
        "overloaded",
        "timestamp_authority_unavailable",
        "audit_log_unavailable",
        "idempotency_key_reused",
        "idempotency_key_in_use",
    ];
    const DECIDE: &[&str] = &[
        "invalid_request",
        "payload_too_large",
        "not_found",
        "idempotency_key_reused",
        "audit_log_unavailable",
    ];
    const AUDIT: &[&str] = &["invalid_request", "out_of_range", "audit_log_unavailable"];
    match (method, path) {
        ("post", "/v1/sign") => SIGN,
        ("post", "/v1/generate") => &[
            "invalid_request",
            "payload_too_large",
            "not_found",
            "empty_text",
            "text_too_long",
            "unsupported_characters",
            "invalid_speed",
            "generator_unavailable",
            "media_too_small",
            "overloaded",
            "timestamp_authority_unavailable",
            "idempotency_key_reused",
            "idempotency_key_in_use",
        ],
        ("post", "/v1/verify") | ("post", "/v1/matches/byContent") => UPLOAD,
        ("get", "/v1/verifications/{id}") | ("get", "/v1/manifests/{label}") => {
            &["invalid_request", "not_found"]
        }
        ("post", "/v1/decisions") | ("post", "/v1/decisions/batch") => DECIDE,
        ("get", "/v1/audit/checkpoint") => &["not_found"],
        ("get", "/v1/audit/verify") | ("get", "/v1/audit/public-key") => &["audit_log_unavailable"],
        ("get", p) if p.starts_with("/v1/audit/") => AUDIT,
        ("post", "/v1/keys") => &[
            "invalid_request",
            "payload_too_large",
            "audit_log_unavailable",
        ],
        ("post", "/v1/keys/{id}/revoke") | ("post", "/v1/keys/{id}/rotate") => &[
            "invalid_request",
            "payload_too_large",
            "not_found",
            "audit_log_unavailable",
        ],
        ("post", "/v1/matches/byBinding") => {
            &["invalid_request", "payload_too_large", "binding_not_found"]
        }
        ("get", "/v1/matches/byBinding") => &["invalid_request", "binding_not_found"],
        ("get", "/metrics") => &["unauthorized", "not_found"],
        ("get", "/readyz") => &["store_unavailable"],
        ("get", "/docs/{path}") => &["not_found"],
        ("get", "/healthz")
        | ("get", "/docs")
        | ("get", "/openapi.json")
        | ("get", "/v1/generators") => &[],
        ("get", "/v1/models") | ("get", "/v1/services/supportedAlgorithms") => &[],
        _ => &["invalid_request"],
    }
}

const AUTHENTICATED: &[&str] = &[
    "unauthorized",
    "insufficient_scope",
    "rate_limited",
    "store_unavailable",
];
const EVERY: &[&str] = &["method_not_allowed", "internal"];

struct Problems;

impl Modify for Problems {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let catalogue: BTreeMap<&str, (u16, &str)> = ApiError::catalogue()
            .iter()
            .map(|e| {
                let (code, status, title) = e.code_and_status();
                (code, (status.as_u16(), title))
            })
            .collect();
        if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(problem))) = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("Problem"))
        {
            let code = ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("Stable machine-readable code."))
                .enum_values(Some(catalogue.keys().copied()))
                .build();
            problem.properties.insert("code".into(), code.into());
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [("get", item.get.as_mut()), ("post", item.post.as_mut())];
            for (method, op) in ops {
                if let Some(op) = op {
                    add_problems(op, method, path, &catalogue);
                }
            }
        }
    }
}

fn add_problems(
    op: &mut Operation,
    method: &str,
    path: &str,
    catalogue: &BTreeMap<&str, (u16, &str)>,
) {
    let authenticated = op
        .security
        .as_ref()
        .is_some_and(|s| !s.is_empty() && path != "/metrics");
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    let extra = if authenticated { AUTHENTICATED } else { &[] };
    for code in problem_codes(method, path).iter().chain(extra).chain(EVERY) {
        if let Some((status, _)) = catalogue.get(code) {
            let codes = by_status.entry(*status).or_default();
            if !codes.contains(code) {
                codes.push(code);
            }
        }
    }
    for (status, codes) in by_status {
        let mut content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem")));
        for code in &codes {
            let title = catalogue.get(code).map(|c| c.1).unwrap_or_default();
            let example = serde_json::json!({
                "type": format!("https://hallmark.dev/problems/{code}"),
                "title": title,
                "status": status,
                "code": code,
                "detail": title,
            });
            content = content.examples_from_iter([(
                (*code).to_owned(),
                ExampleBuilder::new().value(Some(example)).build(),
            )]);
        }
        let listed: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
        let mut response = ResponseBuilder::new()
            .description(format!("Problem: {}", listed.join(", ")))
            .content(PROBLEM_JSON, content.build());
        if codes
            .iter()
            .any(|c| matches!(*c, "rate_limited" | "overloaded" | "store_unavailable"))
        {
            response = response.header(
                "Retry-After",
                utoipa::openapi::Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
            );
        }
        if codes.contains(&"method_not_allowed") {
            response = response.header(
                "Allow",
                utoipa::openapi::Header::new(ObjectBuilder::new().schema_type(Type::String)),
            );
        }
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| response.build().into());
    }
}

/// The document as served: built once.
pub fn document() -> &'static Arc<String> {
    static DOC: OnceLock<Arc<String>> = OnceLock::new();
    DOC.get_or_init(|| {
        Arc::new(
            ApiDoc::openapi()
                .to_pretty_json()
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
        )
    })
}

/// The OpenAPI 3.1 description of this API.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json"))
)]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document().as_str().to_owned())
}

/// Swagger UI (HTML, JavaScript and CSS) reading `/openapi.json`.
#[utoipa::path(
    get, path = "/docs/{path}", tag = "operations",
    params(("path" = String, Path, description = "An asset of the UI; empty for `index.html`")),
    responses((status = 200, description = "The page or asset", content_type = "text/html"))
)]
async fn docs(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let config = Arc::new(utoipa_swagger_ui::Config::from("/openapi.json"));
    match utoipa_swagger_ui::serve(&path, config) {
        Ok(Some(file)) => Ok(HttpResponse::Ok()
            .content_type(file.content_type)
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(file.bytes.into_owned())),
        Ok(None) => Err(ApiError::NotFound("documentation asset")),
        Err(e) => Err(ApiError::Internal(anyhow::anyhow!("swagger ui: {e}"))),
    }
}

/// `/docs` redirects to `/docs/` (the UI's assets are relative to it).
#[utoipa::path(
    get, path = "/docs", tag = "operations",
    responses((status = 308, description = "To `/docs/`", headers(("Location" = String))))
)]
async fn docs_root() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// `GET /openapi.json`, `GET /docs` (redirect), `GET /docs/{path}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(routes::resource(
        "/openapi.json",
        "GET",
        web::get().to(openapi_json),
    ))
    .service(routes::resource("/docs", "GET", web::get().to(docs_root)))
    .service(routes::resource(
        "/docs/{path:.*}",
        "GET",
        web::get().to(docs),
    ));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        serde_json::from_str(document().as_str()).unwrap()
    }

    fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
        out
    }

    #[test]
    fn is_openapi_3_1_with_problem_codes_from_the_catalogue() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let codes: Vec<&str> = doc["components"]["schemas"]["Problem"]["properties"]["code"]
            ["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let catalogue = ApiError::catalogue();
        assert_eq!(codes.len(), catalogue.len(), "{codes:?}");
        for e in &catalogue {
            assert!(codes.contains(&e.code_and_status().0));
        }
    }

    #[test]
    fn every_code_in_the_table_exists_and_every_code_is_documented_somewhere() {
        let known: Vec<&str> = ApiError::catalogue()
            .iter()
            .map(|e| e.code_and_status().0)
            .collect();
        let doc = doc();
        let mut used = std::collections::BTreeSet::new();
        for (method, path, op) in operations(&doc) {
            for code in problem_codes(&method, &path) {
                assert!(known.contains(code), "{method} {path}: unknown code {code}");
            }
            for (status, resp) in op["responses"].as_object().unwrap() {
                if let Some(ex) = resp["content"][PROBLEM_JSON]["examples"].as_object() {
                    for (code, e) in ex {
                        assert_eq!(e["value"]["status"].to_string(), *status);
                        used.insert(code.clone());
                    }
                }
            }
        }
        for code in known {
            assert!(used.contains(code), "no operation documents {code}");
        }
    }

    #[test]
    fn operations_carry_their_problems_and_scopes() {
        let doc = doc();
        let ops = operations(&doc);
        assert!(ops.len() >= 30, "{}", ops.len());
        for (method, path, op) in ops {
            let responses = op["responses"].as_object().unwrap();
            for status in ["405", "500"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
            assert!(
                responses
                    .keys()
                    .any(|s| s.starts_with('2') || s.starts_with('3')),
                "{method} {path}: no success response"
            );
            let open = [
                "/healthz",
                "/readyz",
                "/metrics",
                "/openapi.json",
                "/docs",
                "/docs/{path}",
                "/v1/services/supportedAlgorithms",
            ];
            if open.contains(&path.as_str()) {
                assert!(!responses.contains_key("403"), "{method} {path}");
                continue;
            }
            let scopes = op["security"][0]["api_key"].as_array();
            assert!(
                scopes.is_some_and(|s| s.len() == 1),
                "{method} {path}: no api_key scope"
            );
            for status in ["401", "403", "429"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
            assert!(responses["429"]["headers"]["Retry-After"].is_object());
        }
    }

    #[actix_web::test]
    async fn serves_the_document_and_the_ui() {
        use actix_web::{test, App};
        let app = test::init_service(App::new().configure(configure)).await;
        let resp = test::call_service(
            &app,
            test::TestRequest::get().uri("/openapi.json").to_request(),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let body = test::read_body(resp).await;
        assert_eq!(body.as_ref(), document().as_bytes());
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/docs").to_request()).await;
        assert_eq!(resp.status(), 308);
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/docs/swagger-initializer.js")
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let js = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        assert!(js.contains("/openapi.json"), "{js}");
        let resp = test::call_service(
            &app,
            test::TestRequest::get().uri("/docs/nope.js").to_request(),
        )
        .await;
        assert_eq!(resp.status(), 404);
        let resp = test::call_service(
            &app,
            test::TestRequest::post().uri("/openapi.json").to_request(),
        )
        .await;
        assert_eq!(resp.status(), 405);
    }
}
