//! Plain records exchanged with the store.
//!
//! Timestamps are persisted at millisecond precision (see the crate docs);
//! values read back are truncated accordingly. Use [`crate::now`] to obtain a
//! timestamp that round-trips exactly.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Input of [`crate::Store::create_api_key`]. The caller supplies the id (use
/// [`crate::new_id`]) and the hash of the secret; the store never sees the
/// secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiKey {
    /// Key id (UUID v7 string recommended).
    pub id: String,
    /// Human-readable label.
    pub name: String,
    /// Hash of the secret (e.g. SHA-256 hex). Unique.
    pub key_hash: String,
    /// Scopes; must be non-empty strings without commas or whitespace.
    pub scopes: Vec<String>,
    /// When the key stops authenticating (`None`: never).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A stored API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Key id.
    pub id: String,
    /// Human-readable label.
    pub name: String,
    /// Hash of the secret.
    pub key_hash: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Creation time (set by the store).
    pub created_at: DateTime<Utc>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Expiry time, if any: from then on the key no longer authenticates.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Last successful authentication (recorded at most once a minute per process).
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKeyRecord {
    /// Whether the key grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the key authenticates at `at`: not revoked and not expired.
    pub fn is_active_at(&self, at: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| at < e)
    }
}

/// A generated/registered asset. The caller supplies `id` and `created_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetRecord {
    /// Asset id (UUID v7 string recommended).
    pub id: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// MIME type of the output.
    pub media_type: String,
    /// SHA-256 (64 lowercase hex) of the input, if there was one.
    pub input_sha256: Option<String>,
    /// SHA-256 (64 lowercase hex) of the produced bytes.
    pub output_sha256: String,
    /// Embedded watermark payload: lowercase hex, 16 characters (image, 64 bits) or 8
    /// (audio, 32 bits). Unique.
    pub watermark_payload: Option<String>,
    /// Label of the C2PA manifest, if one was produced.
    pub manifest_label: Option<String>,
    /// Generator name.
    pub generator: String,
    /// Model name.
    pub model: String,
    /// Model version.
    pub model_version: String,
    /// IPTC digital source type URI/term.
    pub digital_source_type: String,
    /// API key id of the creator.
    pub created_by: String,
    /// Content fingerprint of the signed output (`hallmark_watermark::fingerprint` text form),
    /// checked against the candidate whenever the watermark names this asset. `None` for
    /// assets signed before content binding.
    #[serde(default)]
    pub content_fingerprint: Option<String>,
}

/// A stored manifest (e.g. a C2PA manifest store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    /// Manifest label (primary key).
    pub label: String,
    /// The asset it belongs to (must exist).
    pub asset_id: String,
    /// MIME type of `store_bytes` (e.g. `application/c2pa`).
    pub format: String,
    /// The serialized manifest store.
    pub store_bytes: Vec<u8>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A verification request and its report. The caller supplies `id` and
/// `created_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// Verification id (UUID v7 string recommended).
    pub id: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// SHA-256 (64 lowercase hex) of the verified bytes.
    pub sha256: String,
    /// MIME type of the verified bytes.
    pub media_type: String,
    /// Matched asset, if any.
    pub asset_id: Option<String>,
    /// API key id of the requester.
    pub requested_by: String,
    /// The verification report (stored as JSON text).
    pub report: serde_json::Value,
}

/// Input of [`crate::Store::record_decision`]. The store generates the id
/// (UUID v7) and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDecision {
    /// The verification the decision is about (must exist).
    pub verification_id: String,
    /// E.g. `allow`, `label`, `block`, `review`.
    pub action: String,
    /// Policy identifier that produced the decision.
    pub policy: String,
    /// Free-text reason.
    pub reason: String,
    /// Actor (API key id or user).
    pub decided_by: String,
}

/// A stored decision, linked to its audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Decision id (UUID v7, generated by the store).
    pub id: String,
    /// The verification it is about.
    pub verification_id: String,
    /// Action.
    pub action: String,
    /// Policy.
    pub policy: String,
    /// Reason.
    pub reason: String,
    /// Actor.
    pub decided_by: String,
    /// Decision time (equal to the audit entry's `timestamp`).
    pub created_at: DateTime<Utc>,
    /// `seq` of the audit entry recording this decision.
    pub audit_seq: u64,
}
