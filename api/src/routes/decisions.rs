//! `POST /v1/decisions`, `POST /v1/decisions/batch` (scope moderate) and `GET /v1/decisions`
//! (scope audit).
//!
//! Both POST routes take an optional `Idempotency-Key` header (IETF
//! draft-ietf-httpapi-idempotency-key-header): a retry with the same key and request gets the
//! original `201` body (and `Idempotent-Replayed: true`), records nothing; the same key with
//! another request is 422 `idempotency_key_reused`. Keys are scoped per API key and stored
//! with the decisions, so they survive restarts.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::{self, DecisionBatchRequest, DecisionRequest, DecisionsQuery};
use crate::state::AppState;

/// Largest `POST /v1/decisions/batch` body: 100 decisions with 4,000-byte reasons fit.
pub const BATCH_BODY_LIMIT: usize = 1024 * 1024;

/// The `Idempotency-Key` header: an RFC 8941 sf-string (`"…"`, the draft's form) or, as many
/// clients send it, the bare value.
pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let bad = |m: &str| ApiError::InvalidRequest(format!("Idempotency-Key {m}"));
    let mut values = req.headers().get_all("idempotency-key");
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(bad("must be sent once"));
    }
    let s = v
        .to_str()
        .map_err(|_| bad("must be printable ASCII"))?
        .trim();
    let Some(quoted) = s.strip_prefix('"') else {
        return Ok(Some(s.to_owned()));
    };
    let inner = quoted
        .strip_suffix('"')
        .ok_or_else(|| bad("has an unterminated string"))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | '"')) => out.push(e),
                _ => return Err(bad("has an invalid escape")),
            },
            '"' => return Err(bad("has an unescaped quote")),
            c => out.push(c),
        }
    }
    Ok(Some(out))
}

fn created(replayed: bool, body: impl serde::Serialize) -> HttpResponse {
    let mut resp = HttpResponse::Created();
    if replayed {
        resp.insert_header(("Idempotent-Replayed", "true"));
    }
    resp.json(body)
}

/// Records a moderation decision as an audit-log leaf; 201 carries its receipt.
#[utoipa::path(post, path = "/v1/decisions", operation_id = "createDecision", tag = "decisions",
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 printable ASCII, bare or an RFC 8941 string")),
    request_body = crate::service::DecisionRequest,
    responses((status = 201, description = "Recorded (or replayed: `Idempotent-Replayed: true`)", body = crate::service::DecisionResponse,
        headers(("Idempotent-Replayed" = String, description = "`true` on a replay")))),
    security(("api_key" = ["moderate"])))]
async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Moderate)?;
    let key = idempotency_key(&req)?;
    let decision: DecisionRequest =
        super::read_json(&req, payload, &state, crate::error::JSON_BODY_LIMIT).await?;
    let mut out = service::decide(&state, decision, &caller.key_id, key).await?;
    let one = out
        .decisions
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no decision recorded")))?;
    Ok(created(out.replayed, one))
}

/// Records 1–100 decisions together (all or none), one receipt each.
#[utoipa::path(post, path = "/v1/decisions/batch", operation_id = "createDecisionBatch", tag = "decisions",
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 printable ASCII, bare or an RFC 8941 string")),
    request_body = crate::service::DecisionBatchRequest,
    responses((status = 201, description = "Recorded (or replayed)", body = crate::openapi::schemas::DecisionBatch,
        headers(("Idempotent-Replayed" = String, description = "`true` on a replay")))),
    security(("api_key" = ["moderate"])))]
async fn create_batch(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Moderate)?;
    let key = idempotency_key(&req)?;
    let batch: DecisionBatchRequest =
        super::read_json(&req, payload, &state, BATCH_BODY_LIMIT).await?;
    let out = service::decide_batch(&state, batch, &caller.key_id, key).await?;
    // Typed, not through a `serde_json::Value`: the receipts are most of the body.
    #[derive(serde::Serialize)]
    struct Batch<'a> {
        decisions: &'a [service::DecisionResponse],
    }
    Ok(created(
        out.replayed,
        Batch {
            decisions: &out.decisions,
        },
    ))
}

/// Recorded decisions in log order, with filters.
#[utoipa::path(get, path = "/v1/decisions", operation_id = "listDecisions", tag = "decisions",
    params(crate::service::DecisionsQuery),
    responses((status = 200, description = "A page", body = crate::openapi::schemas::DecisionList)),
    security(("api_key" = ["audit"])))]
async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<DecisionsQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    Ok(HttpResponse::Ok().json(service::list_decisions(&state, &q).await?))
}

/// `POST /v1/decisions`, `POST /v1/decisions/batch`, `GET /v1/decisions`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/decisions")
            .route(web::post().to(create))
            .route(web::get().to(list))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::MethodNotAllowed("GET, POST"))
            })),
    )
    .service(super::resource(
        "/v1/decisions/batch",
        "POST",
        web::post().to(create_batch),
    ));
}
