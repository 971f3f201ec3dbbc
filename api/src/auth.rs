//! API keys: `Authorization: Bearer hm_…`. Keys are 256-bit random secrets stored only as
//! SHA-256 digests (a slow KDF adds nothing for full-entropy secrets); scopes are enforced per
//! route.

use std::future::Future;
use std::pin::Pin;

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
    /// `GET /v1/manifests/{label}`.
    Verify,
    /// `POST /v1/decisions`, `POST /v1/decisions/batch`, `GET /v1/review/next`.
    Moderate,
    /// `GET /v1/audit/*`.
    Audit,
}

impl Scope {
    /// All scopes.
    pub const ALL: [Scope; 4] = [Scope::Sign, Scope::Verify, Scope::Moderate, Scope::Audit];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::Moderate => "moderate",
            Self::Audit => "audit",
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
                other => {
                    return Err(format!(
                        "unknown scope '{other}' (expected sign, verify, moderate, audit)"
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

/// Creates a key with `scopes`, stores its digest, and returns `(key id, secret)`. The secret
/// is shown once and never stored.
///
/// # Errors
/// Database failures.
pub async fn create_key(
    state: &AppState,
    name: &str,
    scopes: &[Scope],
) -> Result<(String, String), ApiError> {
    use ring::rand::SecureRandom;
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| ApiError::internal(anyhow::anyhow!("system RNG unavailable")))?;
    let secret = format!(
        "hm_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let id = uuid::Uuid::now_v7().to_string();
    state
        .store
        .create_api_key(&hallmark_store::NewApiKey {
            id: id.clone(),
            name: name.into(),
            key_hash: hash_key(&secret),
            scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        })
        .await?;
    Ok((id, secret))
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

async fn authenticate(
    state: web::Data<AppState>,
    header: Option<String>,
) -> Result<Caller, ApiError> {
    let header = header.ok_or(ApiError::Unauthorized)?;
    // RFC 9110 §11.1: the authentication scheme is case-insensitive.
    let key = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, k)| k.trim())
        .filter(|k| k.starts_with("hm_") && k.len() < 100)
        .ok_or(ApiError::Unauthorized)?;
    let digest = hash_key(key);
    // Always the database, never the cache: a revoked key stops working at once on every
    // instance, and nothing written into Redis can authenticate anyone (one indexed lookup).
    let record = state
        .store
        .find_api_key_by_hash(&digest)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Caller {
        key_id: record.id,
        name: record.name,
        scopes: record.scopes,
    })
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no app state")))?;
            Ok(authenticate(state, header).await?)
        })
    }
}
