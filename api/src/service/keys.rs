//! Key management (`hallmark keys …`, `/v1/keys`, scope `admin`): list, create, revoke,
//! rotate. Every creation, revocation and rotation is a leaf of the audit log (issue 16):
//! `kind` `key.created`, `key.revoked` or `key.rotated`, `actor` the key id that did it (or
//! `cli` / `bootstrap`), `data` the key's id, name, scopes and expiry — never its secret or
//! digest.
//!
//! Ordering against the log: a created key exists only once its leaf is in a signed
//! checkpoint (the row is deleted again when the append fails, and the secret is never
//! shown); a revocation takes effect first and is logged after, so a log outage can never
//! keep a key alive (the call then fails with 503 `audit_log_unavailable`, and repeating it
//! logs it).

use chrono::{DateTime, Utc};
use hallmark_store::{ApiKeyRecord, EntryBody};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{new_key, Scope};
use crate::error::ApiError;
use crate::service::rfc3339;
use crate::state::AppState;

/// Longest lifetime a new key may be given (10 years), seconds.
pub const MAX_KEY_LIFETIME_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A key as listed: never the secret or its digest.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Key id (the actor recorded on decisions and audit entries).
    pub id: String,
    /// Name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Expiry, RFC 3339 (`null`: never).
    pub expires_at: Option<String>,
    /// Last successful authentication, RFC 3339, at minute resolution (`null`: never).
    pub last_used_at: Option<String>,
    /// Revocation time, RFC 3339.
    pub revoked_at: Option<String>,
    /// Authenticates now: not revoked, not expired.
    pub active: bool,
}

impl From<&ApiKeyRecord> for KeyView {
    fn from(k: &ApiKeyRecord) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            scopes: k.scopes.clone(),
            created_at: rfc3339(k.created_at),
            expires_at: k.expires_at.map(rfc3339),
            last_used_at: k.last_used_at.map(rfc3339),
            revoked_at: k.revoked_at.map(rfc3339),
            active: k.is_active_at(Utc::now()),
        }
    }
}

/// `POST /v1/keys` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Name to recognise the key by (1–100 characters).
    pub name: String,
    /// Scopes: `sign`, `verify`, `moderate`, `audit`, `admin`.
    pub scopes: Vec<String>,
    /// Lifetime in seconds (1 – 10 years); absent = no expiry.
    #[serde(default)]
    pub expires_in_seconds: Option<u64>,
}

/// `POST /v1/keys/{id}/rotate` body (optional).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// Seconds the old key keeps working (0 – 30 days); absent or 0 = revoked at once.
    #[serde(default)]
    pub grace_seconds: Option<u64>,
}

/// A new key: shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key's record.
    #[serde(flatten)]
    pub key: KeyView,
    /// The secret (`hm_…`), for `Authorization: Bearer`. Not stored; not shown again.
    pub secret: String,
    /// Position of the creation in the audit log (1-based `seq`; `null` with
    /// `audit.key_events = false`).
    pub audit_seq: Option<u64>,
}

/// A rotation's outcome.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotatedKey {
    /// The replaced key (revoked, or expiring at the end of the grace period).
    pub old: KeyView,
    /// Its successor, with the same name, scopes and expiry.
    pub new: CreatedKey,
}

/// A revocation's outcome.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevokedKey {
    /// The key, now revoked.
    #[serde(flatten)]
    pub key: KeyView,
    /// Position of the revocation in the audit log (1-based `seq`; `null` with
    /// `audit.key_events = false`).
    pub audit_seq: Option<u64>,
}

fn key_data(k: &ApiKeyRecord) -> serde_json::Value {
    json!({
        "id": k.id,
        "name": k.name,
        "scopes": k.scopes,
        "expires_at": k.expires_at.map(rfc3339),
    })
}

/// Appends a `key.*` entry (unless `audit.key_events` is off) and returns its `seq`.
async fn log(
    state: &AppState,
    kind: &str,
    actor: &str,
    data: serde_json::Value,
) -> Result<Option<u64>, ApiError> {
    if !state.settings.audit.key_events {
        return Ok(None);
    }
    let a = state
        .audit
        .append(EntryBody::new(kind, actor, data))
        .await?;
    Ok(Some(a.leaf_index + 1))
}

/// Parses and checks a scope list.
///
/// # Errors
/// [`ApiError::InvalidRequest`] naming an unknown scope, or none at all.
pub fn parse_scopes(scopes: &[String]) -> Result<Vec<Scope>, ApiError> {
    Scope::parse_list(&scopes.join(",")).map_err(ApiError::InvalidRequest)
}

/// Every key, oldest first (revoked ones with `include_revoked`).
///
/// # Errors
/// Database failures.
pub async fn list(state: &AppState, include_revoked: bool) -> Result<Vec<KeyView>, ApiError> {
    let keys = state.store.list_api_keys(include_revoked).await?;
    Ok(keys.iter().map(KeyView::from).collect())
}

/// Creates a key and logs `key.created`; returns it with its secret.
///
/// # Errors
/// [`ApiError::InvalidRequest`] for a bad name, scope or lifetime; 503
/// `audit_log_unavailable` when the creation could not be logged (no key then exists).
pub async fn create(
    state: &AppState,
    req: &CreateKeyRequest,
    actor: &str,
) -> Result<CreatedKey, ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidRequest(
            "name must be 1-100 characters without control characters".into(),
        ));
    }
    let scopes = parse_scopes(&req.scopes)?;
    let expires_at = match req.expires_in_seconds {
        None => None,
        Some(s) if (1..=MAX_KEY_LIFETIME_SECONDS).contains(&s) => {
            Some(Utc::now() + chrono::Duration::seconds(s as i64))
        }
        Some(_) => {
            return Err(ApiError::InvalidRequest(format!(
                "expires_in_seconds must be 1-{MAX_KEY_LIFETIME_SECONDS}"
            )))
        }
    };
    create_logged(state, name, &scopes, expires_at, actor).await
}

/// Creates a key (no validation beyond the store's) and logs `key.created`.
///
/// # Errors
/// As [`create`].
pub async fn create_logged(
    state: &AppState,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
    actor: &str,
) -> Result<CreatedKey, ApiError> {
    let (new, secret) = new_key(name, scopes, expires_at)?;
    let record = state.store.create_api_key(&new).await?;
    let audit_seq = match log(state, "key.created", actor, key_data(&record)).await {
        Ok(seq) => seq,
        Err(e) => {
            // Not in the log: the key must not exist either.
            if let Err(d) = state.store.delete_api_key(&record.id).await {
                tracing::error!(error = %d, key = %record.id, "could not remove a key whose creation was not logged");
            }
            return Err(e);
        }
    };
    Ok(CreatedKey {
        key: KeyView::from(&record),
        secret,
        audit_seq,
    })
}

/// Revokes key `id` (at once: its next request gets 401) and logs `key.revoked`.
///
/// # Errors
/// 400 for a malformed id, 404 for an unknown one; 503 `audit_log_unavailable` when the
/// revocation (already in effect) could not be logged — repeat the call.
pub async fn revoke(state: &AppState, id: &str, actor: &str) -> Result<RevokedKey, ApiError> {
    let id = parse_key_id(id)?;
    let record = state.store.revoke_api_key(&id).await.map_err(not_found)?;
    let mut data = key_data(&record);
    data["revoked_at"] = json!(record.revoked_at.map(rfc3339));
    let audit_seq = log(state, "key.revoked", actor, data).await?;
    Ok(RevokedKey {
        key: KeyView::from(&record),
        audit_seq,
    })
}

/// Replaces key `id` by a new key with the same name, scopes and expiry (one transaction),
/// and logs `key.rotated` with both ids. The old key is revoked at once, or with
/// `grace_seconds` expires then.
///
/// # Errors
/// 400 for a malformed id or grace period, 404 for an unknown or revoked key; 503
/// `audit_log_unavailable` when the rotation (already in effect) could not be logged.
pub async fn rotate(
    state: &AppState,
    id: &str,
    req: &RotateKeyRequest,
    actor: &str,
) -> Result<RotatedKey, ApiError> {
    let id = parse_key_id(id)?;
    let grace = match req.grace_seconds.unwrap_or(0) {
        0 => None,
        s if s <= 30 * 24 * 3600 => Some(Utc::now() + chrono::Duration::seconds(s as i64)),
        _ => {
            return Err(ApiError::InvalidRequest(
                "grace_seconds must be 0-2592000 (30 days)".into(),
            ))
        }
    };
    let old = state
        .store
        .get_api_key(&id)
        .await?
        .filter(|k| k.revoked_at.is_none())
        .ok_or(ApiError::NotFound("api key"))?;
    let scopes = parse_scopes(&old.scopes)?;
    let (new, secret) = new_key(&old.name, &scopes, old.expires_at)?;
    let (old, created) = state
        .store
        .rotate_api_key(&id, &new, grace)
        .await
        .map_err(not_found)?;
    let data = json!({
        "old": key_data(&old),
        "new": key_data(&created),
        "old_revoked_at": old.revoked_at.map(rfc3339),
    });
    let audit_seq = log(state, "key.rotated", actor, data).await?;
    Ok(RotatedKey {
        old: KeyView::from(&old),
        new: CreatedKey {
            key: KeyView::from(&created),
            secret,
            audit_seq,
        },
    })
}

fn not_found(e: hallmark_store::StoreError) -> ApiError {
    match e {
        hallmark_store::StoreError::NotFound(_) => ApiError::NotFound("api key"),
        other => other.into(),
    }
}

fn parse_key_id(id: &str) -> Result<String, ApiError> {
    crate::service::parse_uuid("key", id)
}
