//! A verification's report page, its media preview, the upload form and the decide buttons
//! (which record a decision through [`crate::service::decide`] and show its receipt).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::session::Signed;
use super::view::{DecisionView, Nav, ReportView};
use super::{render, see_other, ConsoleError};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::service::{self, DecisionAction, DecisionRequest};
use crate::state::AppState;

/// Policy recorded when the form leaves it empty.
const DEFAULT_POLICY: &str = "console";

#[derive(Template)]
#[template(path = "console/report.html")]
struct ReportPage {
    nav: Option<Nav>,
    csrf: String,
    report: ReportView,
    filename: Option<String>,
    has_preview: bool,
    decisions: Vec<DecisionView>,
    idempotency_key: String,
}

async fn load(state: &AppState, id: &str) -> Result<(String, serde_json::Value), ConsoleError> {
    let id = service::parse_verification_id(id)?;
    let record = state
        .store
        .get_verification(&id)
        .await
        .map_err(ApiError::from)?
        .ok_or(ApiError::NotFound("verification"))?;
    Ok((id, record.report))
}

async fn page(
    state: web::Data<AppState>,
    signed: Signed,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    signed.caller.require(Scope::Verify)?;
    let (id, stored) = load(&state, &id).await?;
    let decisions = state
        .store
        .list_decisions_for_verification(&id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(DecisionView::from)
        .collect();
    let preview = state.console.previews.get(&id);
    render(&ReportPage {
        nav: Some(Nav::of(&signed)),
        csrf: signed.csrf.clone(),
        report: ReportView::from_stored(&id, &stored),
        filename: preview.as_ref().map(|p| p.filename.clone()),
        has_preview: preview.is_some(),
        decisions,
        // One key per rendering of the form: a double submit replays, never records twice.
        idempotency_key: super::session::random_token()?,
    })
}

/// The uploaded media, for the preview (`Content-Type` from the report's sniffed type).
async fn media(
    state: web::Data<AppState>,
    signed: Signed,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    signed.caller.require(Scope::Verify)?;
    let id = service::parse_verification_id(&id)?;
    let p = state
        .console
        .previews
        .get(&id)
        .ok_or(ApiError::NotFound("preview"))?;
    Ok(HttpResponse::Ok()
        .content_type(p.media_type.as_str())
        .insert_header(("Content-Disposition", "inline"))
        .body(p.bytes.as_ref().clone()))
}

/// The decide form (fields as strings: a malformed value is a 400 with our message).
#[derive(Debug, Default, Deserialize)]
struct DecideForm {
    csrf: Option<String>,
    action: Option<String>,
    policy: Option<String>,
    reason: Option<String>,
    idempotency_key: Option<String>,
}

#[derive(Template)]
#[template(path = "console/receipt.html")]
struct ReceiptPage {
    nav: Option<Nav>,
    verification_id: String,
    decision: DecisionView,
    replayed: bool,
    leaf_hash: String,
    inclusion_proof: Vec<String>,
    checkpoint: String,
    tlog_proof: String,
    check: String,
}

async fn decide(
    state: web::Data<AppState>,
    signed: Signed,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form: DecideForm = super::parse_form(&req, &body);
    signed.check_request(&req, form.csrf.as_deref())?;
    signed.caller.require(Scope::Moderate)?;
    let action: DecisionAction = form
        .action
        .as_deref()
        .map(|a| serde_json::from_value::<DecisionAction>(serde_json::Value::String(a.to_owned())))
        .transpose()
        .ok()
        .flatten()
        .ok_or_else(|| {
            ApiError::InvalidRequest(
                "action must be one of allow, label, restrict, remove, escalate".into(),
            )
        })?;
    let policy = form
        .policy
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_POLICY)
        .to_owned();
    let request = DecisionRequest {
        verification_id: id.into_inner(),
        action,
        policy,
        reason: form.reason.clone().unwrap_or_default(),
    };
    // The same form sent twice with the same content (a double click, a resubmitted page)
    // replays the first decision; another action or reason from the same page is a new one.
    let key = form
        .idempotency_key
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(|k| {
            let content = format!(
                "{k}\0{}\0{}\0{}",
                form.action.as_deref().unwrap_or_default(),
                request.policy,
                request.reason
            );
            format!("console-{}", service::sha256_hex(content.as_bytes()))
        });
    let mut out = service::decide(&state, request, &signed.caller.key_id, key).await?;
    let d = out
        .decisions
        .pop()
        .ok_or_else(|| ConsoleError::Internal("no decision recorded".into()))?;
    // The receipt is checked here as a client would check it: against the log's public key.
    let check = match d.receipt.verify(&state.audit.verifier()) {
        Ok(cp) => format!(
            "verifies against the log key: entry {} is in the signed tree of size {}",
            d.audit_seq, cp.size
        ),
        Err(e) => format!("does NOT verify: {e}"),
    };
    render(&ReceiptPage {
        nav: Some(Nav::of(&signed)),
        verification_id: d.verification_id.clone(),
        decision: DecisionView {
            id: d.id.clone(),
            action: d.action.clone(),
            policy: d.policy.clone(),
            reason: d.reason.clone(),
            decided_by: d.decided_by.clone(),
            created_at: d.created_at.clone(),
            audit_seq: d.audit_seq,
        },
        replayed: out.replayed,
        leaf_hash: d.audit_entry_hash.clone(),
        inclusion_proof: d.receipt.inclusion_proof.clone(),
        checkpoint: d.receipt.checkpoint.clone(),
        tlog_proof: d.tlog_proof.clone(),
        check,
    })
}

/// Verifies an uploaded file, keeps it for the preview and opens its report.
async fn upload(
    state: web::Data<AppState>,
    signed: Signed,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let form = super::upload::read(&req, payload, &state.settings.server).await?;
    signed.check_request(&req, form.csrf.as_deref())?;
    signed.caller.require(Scope::Verify)?;
    let bytes = form
        .file
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::InvalidRequest("choose a file to verify".into()))?;
    let report = service::verify(&state, bytes.clone(), &signed.caller.key_id).await?;
    state
        .console
        .previews
        .put(&report.id, &form.filename, &report.media_type, bytes);
    let to = format!("/console/verifications/{}", report.id);
    let mut resp = see_other(&to);
    resp.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("hx-redirect"),
        actix_web::http::header::HeaderValue::from_str(&to)
            .map_err(|e| ConsoleError::Internal(e.to_string()))?,
    );
    Ok(resp)
}

/// The report page, its media, the decide form and the upload form.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::routes::resource(
        "/verifications/{id}",
        "GET",
        web::get().to(page),
    ))
    .service(crate::routes::resource(
        "/verifications/{id}/media",
        "GET",
        web::get().to(media),
    ))
    .service(crate::routes::resource(
        "/verifications/{id}/decisions",
        "POST",
        web::post().to(decide),
    ))
    .service(crate::routes::resource(
        "/verify",
        "POST",
        web::post().to(upload),
    ));
}
