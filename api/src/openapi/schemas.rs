//! Request and response shapes that live in other crates, or that the handlers build as JSON,
//! described for the OpenAPI document only, so that domain crates need no OpenAPI dependency.
//! Field docs follow the producing code (named on each type).
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// RFC 9457 problem details, as every error response carries them.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `https://hallmark.dev/problems/{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine-readable code (the enum is set from the error catalogue).
    pub code: String,
    /// What went wrong in this request.
    pub detail: String,
}

/// `c2pa.softBindingQuery` (C2PA Soft Binding API): `hallmark_provenance::soft_binding::SoftBindingQuery`.
#[derive(Serialize, ToSchema)]
pub struct SoftBindingQuery {
    /// Algorithm name (see `GET /v1/services/supportedAlgorithms`).
    pub alg: String,
    /// Base64 value of the soft binding.
    pub value: String,
}

/// One match of a soft binding query.
#[derive(Serialize, ToSchema)]
pub struct SoftBindingMatch {
    /// Label of the matched manifest (fetch it from `/v1/manifests/{manifestId}`).
    #[serde(rename = "manifestId")]
    pub manifest_id: String,
    /// Another resolution endpoint holding the manifest (always absent).
    pub endpoint: Option<String>,
    /// Strength of the match, 0–100, when a content comparison measured one.
    #[serde(rename = "similarityScore")]
    #[schema(maximum = 100)]
    pub similarity_score: Option<u8>,
}

/// `c2pa.softBindingQueryResult`: matches, strongest first.
#[derive(Serialize, ToSchema)]
pub struct SoftBindingQueryResult {
    /// Matches, strongest first.
    pub matches: Vec<SoftBindingMatch>,
}

/// One algorithm name.
#[derive(Serialize, ToSchema)]
pub struct AlgEntry {
    /// Algorithm name.
    pub alg: String,
}

/// `c2pa.softBindingAlgList`.
#[derive(Serialize, ToSchema)]
pub struct SoftBindingAlgList {
    /// Watermark algorithms.
    pub watermarks: Vec<AlgEntry>,
    /// Fingerprint algorithms (none).
    pub fingerprints: Vec<AlgEntry>,
}

/// `multipart/form-data` of `POST /v1/sign`.
#[derive(Serialize, ToSchema)]
pub struct SignForm {
    /// The media: JPEG, PNG, WebP, WAV, MP3 or M4A.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// What to record in the manifest (a JSON part).
    pub metadata: crate::service::SignMetadata,
}

/// `multipart/form-data` of `POST /v1/verify` and `POST /v1/matches/byContent`.
#[derive(Serialize, ToSchema)]
pub struct FileForm {
    /// The media.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// An audit-log receipt (`hallmark_audit::Receipt`): offline-verifiable proof that a leaf is in
/// a signed checkpoint (RFC 9162 inclusion proof + C2SP signed note).
#[derive(Serialize, ToSchema)]
pub struct Receipt {
    /// 0-based position of the leaf.
    pub leaf_index: u64,
    /// Hex `SHA-256(0x00 ‖ entry)`.
    pub leaf_hash: String,
    /// Hex hashes of `PATH(leaf_index, D[0:checkpoint size])`, leaf side first.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint (C2SP tlog-checkpoint in a signed note).
    pub checkpoint: String,
    /// The entry's canonical JSON text, as hashed (optional).
    pub entry: Option<String>,
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The service version.
    pub version: String,
}

/// `GET /readyz` when the database and the cache answer.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: String,
    /// The database answered.
    pub database: bool,
    /// `redis` or `memory` (in-process).
    pub cache: String,
    /// Media worker processes.
    pub media_workers: u64,
    /// Loaded detector models (as in `GET /v1/models`).
    pub detectors: Vec<serde_json::Value>,
    /// `development` (a generated certificate, untrusted elsewhere) or `configured`.
    pub signing_identity: String,
}

/// `GET /v1/generators`.
#[derive(Serialize, ToSchema)]
pub struct GeneratorList {
    /// Every registered generator, available or not: `name`, `version`, `kind` (`image` |
    /// `speech`), `description`, `license`, `sha256` (of the model file, checked at load),
    /// `available`, `unavailable` (the reason, when not available: files not installed,
    /// espeak-ng missing) and `parameters` — each `{name, type, required, description,
    /// minimum?, maximum?, values?, default?}` (for `text`, minimum/maximum are lengths in
    /// characters).
    pub generators: Vec<serde_json::Value>,
}

/// `GET /v1/models`.
#[derive(Serialize, ToSchema)]
pub struct ModelList {
    /// Detection is on (a detector registry loaded).
    pub enabled: bool,
    /// Each model: name, version, modality, execution provider, preprocessing, calibration
    /// (method, thresholds, the false-positive rate they were set at), batching and latency.
    pub models: Vec<serde_json::Value>,
}

/// One stored verification as listed (`GET /v1/verifications`).
#[derive(Serialize, ToSchema)]
pub struct VerificationSummary {
    /// Verification id (UUID).
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Detected media type.
    pub media_type: String,
    /// Asset the watermark or manifest named.
    pub asset_id: Option<String>,
    /// API key id that asked.
    pub requested_by: String,
    /// Verdict label.
    pub verdict: String,
    /// Detection band.
    pub band: Option<String>,
    /// Decisions recorded on it.
    pub decisions: u64,
}

/// `GET /v1/verifications`.
#[derive(Serialize, ToSchema)]
pub struct VerificationList {
    /// Newest first.
    pub verifications: Vec<VerificationSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// One decision as listed (`GET /v1/decisions`).
#[derive(Serialize, ToSchema)]
pub struct DecisionSummary {
    /// Decision id.
    pub id: String,
    /// The verification decided on.
    pub verification_id: String,
    /// `allow`, `label`, `restrict`, `remove` or `escalate`.
    pub action: String,
    /// Policy invoked.
    pub policy: String,
    /// Reason.
    pub reason: String,
    /// API key id of the moderator.
    pub decided_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// Sequence number of the audit entry.
    pub audit_seq: u64,
}

/// `GET /v1/decisions`.
#[derive(Serialize, ToSchema)]
pub struct DecisionList {
    /// In log order.
    pub decisions: Vec<DecisionSummary>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_after: Option<u64>,
}

/// `POST /v1/decisions/batch` → 201.
#[derive(Serialize, ToSchema)]
pub struct DecisionBatch {
    /// One per decision of the request, in order, each with its receipt.
    pub decisions: Vec<crate::service::DecisionResponse>,
}

/// `GET /v1/audit/entries`.
#[derive(Serialize, ToSchema)]
pub struct EntryList {
    /// Leaves with `seq > after`: `seq`, `kind`, `actor`, the entry JSON, `leaf_hash`, time.
    pub entries: Vec<serde_json::Value>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_after: Option<u64>,
}

/// `GET /v1/audit/proof/inclusion` (RFC 9162 §2.1.3).
#[derive(Serialize, ToSchema)]
pub struct InclusionProof {
    /// 0-based leaf index.
    pub index: u64,
    /// Tree size the proof is for.
    pub tree_size: u64,
    /// Hex leaf hash.
    pub leaf_hash: Option<String>,
    /// Hex hashes, leaf side first.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint of that size, when one was signed.
    pub checkpoint: Option<String>,
}

/// `GET /v1/audit/proof/consistency` (RFC 9162 §2.1.4).
#[derive(Serialize, ToSchema)]
pub struct ConsistencyProof {
    /// Older tree size.
    pub old: u64,
    /// Newer tree size.
    pub new: u64,
    /// Hex hashes.
    pub consistency_proof: Vec<String>,
}

/// `GET /v1/review/next` → 200: a leased review item.
#[derive(Serialize, ToSchema)]
pub struct ReviewLease {
    /// The verification to review.
    pub verification_id: String,
    /// Its verdict label.
    pub verdict: String,
    /// RFC 3339 end of the lease.
    pub lease_expires_at: String,
}

/// `GET /v1/keys`.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    /// Keys, never their secrets.
    pub keys: Vec<crate::service::keys::KeyView>,
}
