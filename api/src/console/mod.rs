//! The moderator console at `/console`: server-rendered pages (askama templates under
//! `api/templates/console/`, HTML-escaped by default) over the same service functions as the
//! JSON API — the review queue (`GET /v1/verifications` filters, `GET /v1/review/next`
//! leases), reports, decisions with their audit-log receipts, and the log's latest checkpoint.
//!
//! Security (OWASP Session Management and CSRF Prevention cheat sheets): sign-in with an API
//! key opens a server-side session ([`session`]); every state-changing form carries the
//! session's CSRF token (a form without it is refused with 403); every page needs a session
//! (else a redirect to the sign-in page); responses carry a Content-Security-Policy without
//! inline script or style (htmx and `console.js` are static files served from here).

mod assets;
mod pages;
mod previews;
mod report;
pub mod session;
mod upload;
mod view;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, ResponseError};
use askama::Template;

use crate::error::ApiError;
use crate::settings::ConsoleSettings;

/// Content-Security-Policy of every console response: scripts, styles and media only from
/// this origin, no inline script or style, no framing, forms only to this origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; media-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Console state shared by the server's workers: sessions and uploaded previews.
#[derive(Debug)]
pub struct ConsoleState {
    /// Signed-in sessions.
    pub sessions: session::Sessions,
    /// Media uploaded through the console, for the report page's preview.
    pub previews: previews::Previews,
}

impl ConsoleState {
    /// Empty state with the limits of `s`.
    pub fn new(s: &ConsoleSettings) -> Self {
        Self {
            sessions: session::Sessions::new(s),
            previews: previews::Previews::new(s),
        }
    }
}

/// Why a console request failed; rendered as an HTML page (or a redirect to sign-in).
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session: redirect to the sign-in page.
    #[error("sign in first")]
    SignIn,
    /// A state-changing request without this session's CSRF token.
    #[error("the form's CSRF token is missing or wrong; reload the page and try again")]
    Csrf,
    /// A service error, with its code and status.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Unexpected failure; details go to the log only.
    #[error("internal error")]
    Internal(String),
}

impl ConsoleError {
    fn code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            Self::SignIn => ("unauthorized", StatusCode::SEE_OTHER),
            Self::Csrf => ("csrf_failed", StatusCode::FORBIDDEN),
            Self::Api(e) => {
                let (code, status, _) = e.code_and_status();
                (code, status)
            }
            Self::Internal(_) => ("internal_error", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    nav: Option<view::Nav>,
    status: u16,
    code: &'static str,
    message: String,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        self.code_and_status().1
    }

    fn error_response(&self) -> HttpResponse {
        let (code, status) = self.code_and_status();
        if let Self::SignIn = self {
            // htmx follows a 303 inside the page; `HX-Redirect` makes it load the sign-in page.
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console/login"))
                .insert_header(("HX-Redirect", "/console/login"))
                .finish();
        }
        let message = if status.is_server_error() {
            if let Self::Internal(m) = self {
                tracing::error!(error = %m, "console request failed");
            } else {
                tracing::error!(error = ?self, "console request failed");
            }
            "The server could not complete this request.".to_owned()
        } else {
            self.to_string()
        };
        let page = ErrorPage {
            nav: None,
            status: status.as_u16(),
            code,
            message,
        };
        match page.render() {
            Ok(body) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(body),
            Err(_) => HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(code),
        }
    }
}

/// Renders `page` as a `200 text/html` response.
///
/// # Errors
/// [`ConsoleError::Internal`] when the template fails.
pub(crate) fn render(page: &impl Template) -> Result<HttpResponse, ConsoleError> {
    let body = page
        .render()
        .map_err(|e| ConsoleError::Internal(format!("template: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// The fields of a urlencoded form body. Another content type or a malformed body reads as
/// no fields at all, so the CSRF check refuses it (403) before any field is used.
pub(crate) fn parse_form<T: serde::de::DeserializeOwned + Default>(
    req: &actix_web::HttpRequest,
    body: &[u8],
) -> T {
    let urlencoded = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !urlencoded {
        return T::default();
    }
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// A `303 See Other` to `to` (after a form post).
pub(crate) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

/// Registers `/console` and its pages (when `console.enabled`), with the security headers.
pub fn configure(cfg: &mut web::ServiceConfig, settings: &ConsoleSettings) {
    if !settings.enabled {
        return;
    }
    let headers = actix_web::middleware::DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((header::CACHE_CONTROL, "no-store"));
    cfg.service(
        web::scope("/console")
            .wrap(headers)
            .configure(pages::configure)
            .configure(report::configure)
            .configure(assets::configure),
    );
}
