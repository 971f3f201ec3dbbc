//! API keys: `Authorization: Bearer hm_…`. Keys are 256-bit random secrets stored only as
//! SHA-256 digests (a slow KDF adds nothing for full-entropy secrets); scopes are enforced per
//! route.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, FromRequest, HttpRequest};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// Scopes a key can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `POST /v1/sign`.
    Sign,
    /// `POST /v1/verify`, `GET /v1/verifications`, `GET /v1/verifications/{id}`,
    /// `GET /v1/manifests/{label}`, the soft binding resolution routes `/v1/matches/*` (the C2PA
    /// API's `fetch:manifests`).
    Verify,
    /// `POST /v1/decisions`, `POST /v1/decisions/batch`, `GET /v1/review/next`.
    Moderate,
    /// `GET /v1/audit/*`.
    Audit,
    /// Key management: `/v1/keys`.
    Admin,
}

impl Scope {
    /// All scopes.
    pub const ALL: [Scope; 5] = [
        Scope::Sign,
        Scope::Verify,
        Scope::Moderate,
        Scope::Audit,
        Scope::Admin,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::Moderate => "moderate",
            Self::Audit => "audit",
            Self::Admin => "admin",
        }
    }

    /// Parses a comma-separated list (`sign,verify`).
    ///
    /// # Errors
    /// Names the unknown scope.
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let scope = match part {
                "sign" => Scope::Sign,
                "verify" => Scope::Verify,
                "moderate" => Scope::Moderate,
                "audit" => Scope::Audit,
                "admin" => Scope::Admin,
                other => {
                    return Err(format!(
                        "unknown scope '{other}' (expected sign, verify, moderate, audit, admin)"
                    ))
                }
            };
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        if out.is_empty() {
            return Err("at least one scope is required".into());
        }
        Ok(out)
    }
}

/// Digest under which a key is stored.
pub fn hash_key(key: &str) -> String {
    crate::service::sha256_hex(key.as_bytes())
}

/// Creates a key with `scopes` (expiring at `expires_at`, if given), stores its digest, and
/// returns the stored record and the secret. The secret is shown once and never stored. This
/// does not write the audit log: [`crate::service::keys`] does.
///
/// # Errors
/// Database failures.
pub async fn create_key(
    state: &AppState,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(hallmark_store::ApiKeyRecord, String), ApiError> {
    let (new, secret) = new_key(name, scopes, expires_at)?;
    let record = state.store.create_api_key(&new).await?;
    Ok((record, secret))
}

/// A fresh key: 256 random bits as `hm_<base64url>`, its id and digest. Nothing is stored.
///
/// # Errors
/// The system RNG failing.
pub fn new_key(
    name: &str,
    scopes: &[Scope],
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(hallmark_store::NewApiKey, String), ApiError> {
    use ring::rand::SecureRandom;
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| ApiError::internal(anyhow::anyhow!("system RNG unavailable")))?;
    let secret = format!(
        "hm_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let new = hallmark_store::NewApiKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.into(),
        key_hash: hash_key(&secret),
        scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        expires_at,
    };
    Ok((new, secret))
}

/// The authenticated caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Caller {
    /// Key id (recorded as the actor of decisions).
    pub key_id: String,
    /// Key name.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

impl Caller {
    /// Fails with 403 `insufficient_scope` unless the key holds `scope`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`].
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s == scope.as_str()) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope.as_str()))
        }
    }
}

/// How often a key's `last_used_at` is written, per key and process.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Remembers when this process last wrote each key's `last_used_at`, so that a busy key
/// costs one UPDATE a minute, not one per request.
#[derive(Debug, Default)]
pub struct KeyUsage {
    last: Mutex<HashMap<String, Instant>>,
}

impl KeyUsage {
    fn due(&self, key_id: &str) -> bool {
        let now = Instant::now();
        let mut m = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 100_000 {
            m.retain(|_, t| now.duration_since(*t) < TOUCH_EVERY);
        }
        match m.get(key_id) {
            Some(t) if now.duration_since(*t) < TOUCH_EVERY => false,
            _ => {
                m.insert(key_id.to_owned(), now);
                true
            }
        }
    }
}

/// What an authentication attempt needs from the request.
struct Attempt {
    header: Option<String>,
    ip: Option<IpAddr>,
    route: String,
}

async fn authenticate(state: web::Data<AppState>, a: Attempt) -> Result<Caller, ApiError> {
    let header = a.header.ok_or(ApiError::Unauthorized)?;
    // RFC 9110 §11.1: the authentication scheme is case-insensitive.
    let key = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, k)| k.trim())
        .ok_or(ApiError::Unauthorized)?;
    authenticate_secret(&state, key, a.ip, &a.route).await
}

/// Authenticates the secret `key` (`hm_…`) sent from `ip` to `route`: the failed-attempt
/// limit per address, the lookup by digest (revoked and expired keys fail), the key's rate
/// limit. Used by the `Authorization` header and the console's sign-in form alike.
///
/// # Errors
/// `Unauthorized` for a malformed, unknown, revoked or expired key; `RateLimited`.
pub async fn authenticate_secret(
    state: &AppState,
    key: &str,
    ip: Option<IpAddr>,
    route: &str,
) -> Result<Caller, ApiError> {
    let key = Some(key.trim())
        .filter(|k| k.starts_with("hm_") && k.len() < 100)
        .ok_or(ApiError::Unauthorized)?;
    // An address that keeps sending bad keys is refused before any lookup.
    state.limits.check_auth_allowed(ip).map_err(|l| {
        crate::metrics::rate_limited("failed_auth");
        rate_limited(l)
    })?;
    let digest = hash_key(key);
    // Always the database, never the cache: a revoked or expired key stops working on its
    // very next request on every instance, and nothing written into Redis can authenticate
    // anyone (one indexed lookup).
    let Some(record) = state.store.find_api_key_by_hash(&digest).await? else {
        state.limits.auth_failed(ip);
        return Err(ApiError::Unauthorized);
    };
    if state.key_usage.due(&record.id) {
        if let Err(e) = state
            .store
            .touch_api_key(&record.id, hallmark_store::now())
            .await
        {
            tracing::warn!(error = %e, key = %record.id, "could not record the key's last use");
        }
    }
    state.limits.check_key(&record.id, route).map_err(|l| {
        crate::metrics::rate_limited("key");
        rate_limited(l)
    })?;
    Ok(Caller {
        key_id: record.id,
        name: record.name,
        scopes: record.scopes,
    })
}

fn rate_limited(l: crate::ratelimit::Limited) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: l.retry_after_secs,
    }
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let attempt = Attempt {
            header: req
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned),
            // The TCP peer: forwarding headers are client-controlled, so they never pick
            // the bucket.
            ip: req.peer_addr().map(|a| a.ip()),
            route: req.match_pattern().unwrap_or_else(|| req.path().to_owned()),
        };
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no app state")))?;
            Ok(authenticate(state, attempt).await?)
        })
    }
}
