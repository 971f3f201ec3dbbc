//! Sign-in and sign-out, the review queue, the next-item lease and the audit page.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::session::{self, Signed, LOGIN_COOKIE, SESSION_COOKIE};
use super::view::{self, Nav, QueueRow};
use super::{render, see_other, ConsoleError};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// Scopes a key needs to sign in: the queue lists verifications, the buttons record decisions.
const SIGN_IN_SCOPES: [Scope; 2] = [Scope::Verify, Scope::Moderate];
/// Lifetime of the sign-in form's CSRF cookie, seconds.
const LOGIN_FORM_SECS: u64 = 600;

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    message: Option<String>,
}

/// The sign-in page, with a fresh CSRF token in a cookie and the form (double submit).
fn login_page(req: &HttpRequest, message: Option<String>) -> Result<HttpResponse, ConsoleError> {
    let csrf = session::random_token()?;
    let mut resp = render(&LoginPage {
        nav: None,
        csrf: csrf.clone(),
        message,
    })?;
    let cookie = session::set_cookie(req, LOGIN_COOKIE, &csrf, "/console/login", LOGIN_FORM_SECS);
    resp.headers_mut().append(
        actix_web::http::header::SET_COOKIE,
        actix_web::http::header::HeaderValue::from_str(&cookie)
            .map_err(|e| ConsoleError::Internal(e.to_string()))?,
    );
    Ok(resp)
}

async fn login_form(req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    login_page(&req, None)
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    csrf: Option<String>,
    api_key: Option<String>,
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form: LoginForm = super::parse_form(&req, &body);
    let expected = session::cookie(&req, LOGIN_COOKIE);
    match (expected, form.csrf.as_deref()) {
        (Some(e), Some(got)) if session::tokens_equal(&e, got) => {}
        _ => return Err(ConsoleError::Csrf),
    }
    let key = form.api_key.as_deref().unwrap_or_default();
    let ip = req.peer_addr().map(|a| a.ip());
    let caller = match crate::auth::authenticate_secret(&state, key, ip, "/console/login").await {
        Ok(c) => c,
        Err(ApiError::Unauthorized) => {
            return login_page(
                &req,
                Some("That API key is unknown, revoked or expired.".into()),
            )
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(missing) = SIGN_IN_SCOPES.iter().find(|s| caller.require(**s).is_err()) {
        return login_page(
            &req,
            Some(format!(
                "This key lacks the '{}' scope the console needs (verify and moderate).",
                missing.as_str()
            )),
        );
    }
    // A new session id at every sign-in (no fixation); any previous one ends.
    if let Some(old) = session::cookie(&req, SESSION_COOKIE) {
        state.console.sessions.close(&old);
    }
    let (id, _) = state.console.sessions.open(&caller.key_id)?;
    let max_age = state.console.sessions.max_age_secs();
    Ok(see_other_setting(
        "/console",
        [
            session::set_cookie(&req, SESSION_COOKIE, &id, "/console", max_age),
            session::set_cookie(&req, LOGIN_COOKIE, "", "/console/login", 0),
        ],
    ))
}

/// `303 See Other` to `location`, setting each cookie.
fn see_other_setting<const N: usize>(location: &str, cookies: [String; N]) -> HttpResponse {
    let mut resp = HttpResponse::SeeOther();
    resp.insert_header((actix_web::http::header::LOCATION, location));
    for cookie in cookies {
        resp.append_header((actix_web::http::header::SET_COOKIE, cookie));
    }
    resp.finish()
}

#[derive(Debug, Default, Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn logout(
    state: web::Data<AppState>,
    signed: Signed,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form: CsrfForm = super::parse_form(&req, &body);
    signed.check_request(&req, form.csrf.as_deref())?;
    state.console.sessions.close(&signed.session_id);
    Ok(see_other_setting(
        "/console/login",
        [session::set_cookie(&req, SESSION_COOKIE, "", "/console", 0)],
    ))
}

/// Queue filters as the form sends them (empty = any).
#[derive(Debug, Default, Deserialize)]
struct QueueParams {
    verdict: Option<String>,
    band: Option<String>,
    decided: Option<String>,
    media_type: Option<String>,
    cursor: Option<String>,
    empty: Option<String>,
}

#[derive(Template)]
#[template(path = "console/queue.html")]
struct QueuePage {
    nav: Option<Nav>,
    csrf: String,
    verdicts: Vec<view::Choice>,
    bands: Vec<view::Choice>,
    decided: String,
    media_type: String,
    rows: Vec<QueueRow>,
    next_page: Option<String>,
    queue_empty: bool,
}

fn non_empty(v: Option<&String>) -> String {
    v.map(|s| s.trim().to_owned()).unwrap_or_default()
}

async fn queue(
    state: web::Data<AppState>,
    signed: Signed,
    q: web::Query<QueueParams>,
) -> Result<HttpResponse, ConsoleError> {
    signed.caller.require(Scope::Verify)?;
    let verdict = non_empty(q.verdict.as_ref());
    let band = non_empty(q.band.as_ref());
    // The review backlog by default: undecided verifications.
    let decided = match q.decided.as_deref().map(str::trim) {
        None | Some("") => "false".to_owned(),
        Some(d) => d.to_owned(),
    };
    let media_type = non_empty(q.media_type.as_ref());
    let mut query = serde_json::Map::new();
    let mut link = Vec::new();
    for (name, value) in [
        ("verdict", &verdict),
        ("band", &band),
        ("media_type", &media_type),
    ] {
        if !value.is_empty() {
            query.insert(name.into(), value.clone().into());
            link.push(format!("{name}={}", view::urlencode(value)));
        }
    }
    link.push(format!("decided={}", view::urlencode(&decided)));
    if decided != "any" {
        query.insert("decided".into(), decided.clone().into());
    }
    if let Some(c) = q.cursor.as_ref().filter(|c| !c.is_empty()) {
        query.insert("cursor".into(), c.clone().into());
    }
    query.insert("limit".into(), 50.into());
    let query: crate::service::VerificationsQuery =
        serde_json::from_value(serde_json::Value::Object(query))
            .map_err(|e| ApiError::InvalidRequest(format!("queue filter: {e}")))?;
    let listed = crate::service::list_verifications(&state, &query).await?;
    let rows = view::queue_rows(&listed);
    let next_page = listed["next_cursor"]
        .as_str()
        .map(|c| format!("/console?{}&cursor={}", link.join("&"), view::urlencode(c)));
    render(&QueuePage {
        nav: Some(Nav::of(&signed)),
        csrf: signed.csrf.clone(),
        verdicts: view::choices(&crate::service::VERDICT_LABELS, &verdict),
        bands: view::choices(&crate::service::BANDS, &band),
        decided,
        media_type,
        rows,
        next_page,
        queue_empty: q.empty.is_some(),
    })
}

/// Leases the next item to review to this moderator and opens it.
async fn next(
    state: web::Data<AppState>,
    signed: Signed,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form: CsrfForm = super::parse_form(&req, &body);
    signed.check_request(&req, form.csrf.as_deref())?;
    signed.caller.require(Scope::Moderate)?;
    let lease = crate::service::review::lease_next(&state, &signed.caller.key_id, 300).await?;
    Ok(match lease {
        Some(l) => see_other(&format!("/console/verifications/{}", l.verification_id)),
        None => see_other("/console?empty=1"),
    })
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    checkpoint: Option<view::CheckpointView>,
    status: view::LogStatusView,
    verifier_key: String,
}

async fn audit(state: web::Data<AppState>, signed: Signed) -> Result<HttpResponse, ConsoleError> {
    signed.caller.require(Scope::Audit)?;
    let checkpoint = state
        .audit
        .latest_checkpoint()
        .await
        .map_err(ApiError::from)?;
    let report = state.audit.verify().await.map_err(ApiError::from)?;
    render(&AuditPage {
        nav: Some(Nav::of(&signed)),
        checkpoint: checkpoint.map(|c| view::CheckpointView {
            tree_size: c.tree_size,
            root_hash: c.root_hash,
            note: c.note,
        }),
        status: view::LogStatusView::from(&report),
        verifier_key: state.audit.verifier().to_vkey(),
    })
}

/// Sign-in, sign-out, the queue, the next-item lease and the audit page.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login")
            .route(web::get().to(login_form))
            .route(web::post().to(login)),
    )
    .service(crate::routes::resource(
        "/logout",
        "POST",
        web::post().to(logout),
    ))
    .service(crate::routes::resource("", "GET", web::get().to(queue)))
    .service(crate::routes::resource("/", "GET", web::get().to(queue)))
    .service(crate::routes::resource(
        "/next",
        "POST",
        web::post().to(next),
    ))
    .service(crate::routes::resource(
        "/audit",
        "GET",
        web::get().to(audit),
    ));
}
