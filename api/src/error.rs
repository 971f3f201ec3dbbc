//! The one mapping from errors to HTTP: every error has a stable snake_case code and a status,
//! rendered as RFC 9457 problem+json. 5xx bodies never echo internals.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Errors surfaced by the service (HTTP and CLI alike).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or malformed `Authorization: Bearer` header, or unknown key.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// The key lacks the scope the route needs.
    #[error("this API key lacks the '{0}' scope")]
    Forbidden(&'static str),
    /// Malformed request (missing field, bad JSON, bad parameter).
    #[error("{0}")]
    InvalidRequest(String),
    /// Upload larger than `server.max_upload_bytes`.
    #[error("upload exceeds the {limit} byte limit")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// Media type not recognised or not supported for the operation.
    #[error("{0}")]
    UnsupportedMedia(String),
    /// Recognised but undecodable media.
    #[error("{0}")]
    CorruptMedia(String),
    /// Media over a decoding limit (pixels, duration, channels).
    #[error("{0}")]
    MediaLimit(String),
    /// Media too small to carry a watermark.
    #[error("{0}")]
    MediaTooSmall(String),
    /// The request body did not arrive in time.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// Resource not found.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A well-formed soft binding value that names no manifest of this service
    /// (`/v1/matches/byBinding`).
    #[error("{0}")]
    BindingNotFound(String),
    /// The route exists but not for this method; the value is the `Allow` header.
    #[error("method not allowed; this route accepts {0}")]
    MethodNotAllowed(&'static str),
    /// A service Hallmark depends on for this request (the RFC 3161 time-stamp authority)
    /// failed; nothing was stored.
    #[error("{0}")]
    UpstreamUnavailable(String),
    /// Too much work queued; retry later.
    #[error("the service is overloaded, retry later")]
    Overloaded,
    /// Over the key's request rate for this route, or too many failed authentications from
    /// this address (`rate_limits.*`).
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request would be admitted (the `Retry-After` value).
        retry_after_secs: u64,
    },
    /// A store the request needs (the database) is unreachable; nothing was changed.
    #[error("{0}")]
    StoreUnavailable(String),
    /// A log position or size outside the log (index >= tree size, a size past the latest
    /// checkpoint, old > new).
    #[error("{0}")]
    OutOfRange(String),
    /// The audit log cannot append (a batch failed, or the stored log no longer matches its
    /// latest signed checkpoint); nothing was acknowledged.
    #[error("the audit log cannot append right now")]
    AuditLogUnavailable(String),
    /// An `Idempotency-Key` the caller used before for a different request; nothing was
    /// recorded (IETF draft-ietf-httpapi-idempotency-key-header §2.7: 422).
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// The request under this `Idempotency-Key` is still being processed (draft §2.7: 409);
    /// retry later for its result.
    #[error("a request with this Idempotency-Key is still being processed; retry later")]
    IdempotencyInProgress,
    /// The text or speed of a speech generation request was refused: `empty_text`,
    /// `unsupported_characters`, `invalid_speed` (400) or `text_too_long` (413).
    #[error("{0}")]
    SpeechInput(hallmark_generators::TextError),
    /// The generator is registered but cannot run on this instance (its files are not
    /// installed, or espeak-ng is missing); `GET /v1/generators` gives the reason.
    #[error("{0}")]
    GeneratorUnavailable(String),
    /// Unexpected server-side failure; details go to the log only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: String,
}

impl ApiError {
    /// Stable machine-readable code and HTTP status.
    pub fn code_and_status(&self) -> (&'static str, StatusCode, &'static str) {
        match self {
            Self::Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED, "Unauthorized"),
            Self::Forbidden(_) => ("insufficient_scope", StatusCode::FORBIDDEN, "Forbidden"),
            Self::InvalidRequest(_) => (
                "invalid_request",
                StatusCode::BAD_REQUEST,
                "Invalid request",
            ),
            Self::PayloadTooLarge { .. } => (
                "payload_too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload too large",
            ),
            Self::UnsupportedMedia(_) => (
                "unsupported_media_type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
            ),
            Self::CorruptMedia(_) => (
                "corrupt_media",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Corrupt or truncated media",
            ),
            Self::MediaLimit(_) => (
                "media_limit_exceeded",
                StatusCode::PAYLOAD_TOO_LARGE,
                "Media exceeds a limit",
            ),
            Self::MediaTooSmall(_) => (
                "media_too_small",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Media too small to watermark",
            ),
            Self::NotFound(_) => ("not_found", StatusCode::NOT_FOUND, "Not found"),
            Self::BindingNotFound(_) => (
                "binding_not_found",
                StatusCode::NOT_FOUND,
                "Soft binding not found",
            ),
            Self::MethodNotAllowed(_) => (
                "method_not_allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
            ),
            Self::RequestTimeout(_) => (
                "request_timeout",
                StatusCode::REQUEST_TIMEOUT,
                "Request timeout",
            ),
            Self::Overloaded => ("overloaded", StatusCode::SERVICE_UNAVAILABLE, "Overloaded"),
            Self::RateLimited { .. } => (
                "rate_limited",
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
            ),
            Self::StoreUnavailable(_) => (
                "store_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "Store unavailable",
            ),
            Self::OutOfRange(_) => ("out_of_range", StatusCode::BAD_REQUEST, "Out of range"),
            Self::AuditLogUnavailable(_) => (
                "audit_log_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "Audit log unavailable",
            ),
            Self::UpstreamUnavailable(_) => (
                "timestamp_authority_unavailable",
                StatusCode::BAD_GATEWAY,
                "Time-stamp authority unavailable",
            ),
            Self::IdempotencyKeyReused(_) => (
                "idempotency_key_reused",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency key reused",
            ),
            Self::IdempotencyInProgress => (
                "idempotency_key_in_use",
                StatusCode::CONFLICT,
                "Request in progress",
            ),
            Self::SpeechInput(e) => {
                use hallmark_generators::TextError as T;
                let (status, title) = match e {
                    T::Empty => (StatusCode::BAD_REQUEST, "Empty text"),
                    T::TooLong { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "Text too long"),
                    T::UnsupportedCharacter { .. } => {
                        (StatusCode::BAD_REQUEST, "Unsupported characters")
                    }
                    T::Speed(_) => (StatusCode::BAD_REQUEST, "Invalid speed"),
                };
                (e.code(), status, title)
            }
            Self::GeneratorUnavailable(_) => (
                "generator_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "Generator unavailable",
            ),
            Self::Internal(_) => (
                "internal",
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
            ),
        }
    }

    /// One error of every kind, in declaration order: the catalogue of stable codes (the
    /// OpenAPI document's `Problem.code` enum is built from it).
    pub fn catalogue() -> Vec<ApiError> {
        let all = vec![
            Self::Unauthorized,
            Self::Forbidden(""),
            Self::InvalidRequest(String::new()),
            Self::PayloadTooLarge { limit: 0 },
            Self::UnsupportedMedia(String::new()),
            Self::CorruptMedia(String::new()),
            Self::MediaLimit(String::new()),
            Self::MediaTooSmall(String::new()),
            Self::RequestTimeout(0),
            Self::NotFound(""),
            Self::MethodNotAllowed(""),
            Self::UpstreamUnavailable(String::new()),
            Self::Overloaded,
            Self::RateLimited {
                retry_after_secs: 0,
            },
            Self::StoreUnavailable(String::new()),
            Self::OutOfRange(String::new()),
            Self::AuditLogUnavailable(String::new()),
            Self::IdempotencyKeyReused(String::new()),
            Self::IdempotencyInProgress,
            Self::BindingNotFound(String::new()),
            Self::SpeechInput(hallmark_generators::TextError::Empty),
            Self::SpeechInput(hallmark_generators::TextError::TooLong { chars: 0, limit: 0 }),
            Self::SpeechInput(hallmark_generators::TextError::UnsupportedCharacter {
                code: 0,
                position: 0,
            }),
            Self::SpeechInput(hallmark_generators::TextError::Speed(0.0)),
            Self::GeneratorUnavailable(String::new()),
            Self::Internal(anyhow::anyhow!("")),
        ];
        // A new variant fails to compile here until it is added to the list above.
        for e in &all {
            match e {
                Self::Unauthorized
                | Self::Forbidden(_)
                | Self::InvalidRequest(_)
                | Self::PayloadTooLarge { .. }
                | Self::UnsupportedMedia(_)
                | Self::CorruptMedia(_)
                | Self::MediaLimit(_)
                | Self::MediaTooSmall(_)
                | Self::RequestTimeout(_)
                | Self::NotFound(_)
                | Self::MethodNotAllowed(_)
                | Self::UpstreamUnavailable(_)
                | Self::Overloaded
                | Self::RateLimited { .. }
                | Self::StoreUnavailable(_)
                | Self::OutOfRange(_)
                | Self::AuditLogUnavailable(_)
                | Self::IdempotencyKeyReused(_)
                | Self::IdempotencyInProgress
                | Self::BindingNotFound(_)
                | Self::SpeechInput(_)
                | Self::GeneratorUnavailable(_)
                | Self::Internal(_) => {}
            }
        }
        all
    }

    /// Wraps any error as an internal one.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code_and_status().1
    }

    fn error_response(&self) -> HttpResponse {
        let (code, status, title) = self.code_and_status();
        if let Self::Internal(e) = self {
            tracing::error!(error = ?e, "internal error");
        }
        if let Self::AuditLogUnavailable(e) = self {
            tracing::error!(error = %e, "audit log unavailable");
        }
        let body = Problem {
            kind: format!("https://hallmark.dev/problems/{code}"),
            title,
            status: status.as_u16(),
            code,
            detail: self.to_string(),
        };
        let mut resp = HttpResponse::build(status);
        resp.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if matches!(
            self,
            Self::Overloaded | Self::StoreUnavailable(_) | Self::IdempotencyInProgress
        ) {
            resp.insert_header((header::RETRY_AFTER, "5"));
        }
        if let Self::RateLimited { retry_after_secs } = self {
            resp.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        if let Self::MethodNotAllowed(allow) = self {
            resp.insert_header((header::ALLOW, *allow));
        }
        if matches!(self, Self::Unauthorized) {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        resp.json(body)
    }
}

impl From<hallmark_media::MediaError> for ApiError {
    fn from(e: hallmark_media::MediaError) -> Self {
        use hallmark_media::MediaError as M;
        match e {
            M::UnknownFormat | M::Unsupported { .. } => Self::UnsupportedMedia(e.to_string()),
            M::LimitExceeded(_) => Self::MediaLimit(e.to_string()),
            M::Corrupt { .. } => Self::CorruptMedia(e.to_string()),
            M::Encode { .. } => Self::Internal(e.into()),
        }
    }
}

impl From<hallmark_store::StoreError> for ApiError {
    fn from(e: hallmark_store::StoreError) -> Self {
        match e {
            hallmark_store::StoreError::NotFound(_) => Self::NotFound("resource"),
            e @ hallmark_store::StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::StoreUnavailable("the database is unavailable; retry later".into())
            }
            hallmark_store::StoreError::OutOfRange(m) => Self::OutOfRange(m),
            hallmark_store::StoreError::LogUnavailable(m) => Self::AuditLogUnavailable(m),
            hallmark_store::StoreError::IdempotencyConflict(m) => Self::IdempotencyKeyReused(m),
            other => Self::Internal(other.into()),
        }
    }
}

/// Largest JSON request body accepted (bytes).
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Bounds buffered (`web::Bytes`) request bodies, i.e. the JSON routes, to
/// [`JSON_BODY_LIMIT`]; larger ones get 413 `payload_too_large` (via [`problem_fallback`]).
pub fn json_payload_config() -> actix_web::web::PayloadConfig {
    actix_web::web::PayloadConfig::new(JSON_BODY_LIMIT)
}

/// Renders a JSON extractor or query error as problem+json `invalid_request`.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(JSON_BODY_LIMIT)
        .error_handler(|err, _| {
            ApiError::InvalidRequest(format!("invalid JSON body: {err}")).into()
        })
}

/// Renders a query-string error as problem+json `invalid_request`.
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default()
        .error_handler(|err, _| ApiError::InvalidRequest(format!("invalid query: {err}")).into())
}

/// Renders a path error as problem+json `invalid_request`.
pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default()
        .error_handler(|err, _| ApiError::InvalidRequest(format!("invalid path: {err}")).into())
}

/// Rewrites error responses that the framework produced itself (a body over the payload limit,
/// a malformed multipart header, …) as problem+json, so every 4xx/5xx the API returns has the
/// same shape and a stable `code`. Responses already in problem+json pass through unchanged.
///
/// Used with [`actix_web::middleware::ErrorHandlers::default_handler`].
///
/// # Errors
/// None of its own; the signature is the middleware's.
pub fn problem_fallback<B: actix_web::body::MessageBody + 'static>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::middleware::ErrorHandlerResponse;
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json") || v.starts_with("text/html"));
    // Problem documents pass through, and so do the console's HTML error pages.
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let detail = res
        .response()
        .error()
        .map(ToString::to_string)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let err = match status {
        // The only extractor that buffers a body is `web::Bytes` on the JSON routes, bounded by
        // `json_payload_config`; uploads stream and report their own limit.
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit: JSON_BODY_LIMIT,
        },
        StatusCode::NOT_FOUND => ApiError::NotFound("route"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMedia(detail),
        StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout(0),
        s if s.is_client_error() => ApiError::InvalidRequest(detail),
        _ => ApiError::Internal(anyhow::anyhow!("{status}: {detail}")),
    };
    let (req, _) = res.into_parts();
    let new = err.error_response().map_into_right_body();
    Ok(ErrorHandlerResponse::Response(
        actix_web::dev::ServiceResponse::new(req, new),
    ))
}
