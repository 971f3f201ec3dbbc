//! Static files of the console, compiled into the binary: the vendored htmx (0BSD, see
//! `api/static/console/htmx.LICENSE.txt`), the keyboard shortcuts and the stylesheet. They
//! need no session (they hold no data).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::error::ApiError;

/// (name, MIME type, bytes).
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/htmx.min.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../static/console/console.css"),
    ),
];

async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, mime, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .ok_or(ApiError::NotFound("file"))?;
    Ok(HttpResponse::Ok()
        .content_type(*mime)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(*body))
}

/// `GET /console/static/{name}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::routes::resource(
        "/static/{name}",
        "GET",
        web::get().to(asset),
    ));
}
