//! # hallmark-store — persistence for Hallmark
//!
//! The only crate that talks to databases (via `sqlx`) and Redis.
//!
//! * [`Store`]: relational data (API keys, assets, manifests, verifications,
//!   decisions) and the tamper-evident audit log, on **PostgreSQL or SQLite**
//!   through a single code path over [`sqlx::AnyPool`] with portable SQL
//!   (`$1` placeholders work on both under sqlx). Each backend has its own
//!   migration set (`migrations/postgres`, `migrations/sqlite`), embedded at
//!   compile time and applied by [`Store::connect`].
//! * [`Cache`]: byte cache on Redis or in-process.
//!
//! ## Storage conventions
//!
//! * ids are TEXT. Callers supply ids for API keys, assets, manifests
//!   (label) and verifications (use [`new_id`], a UUID v7 string); the store
//!   generates the ids of decisions.
//! * timestamps are TEXT, RFC 3339 UTC, millisecond precision, `Z` suffix
//!   (`2025-01-31T12:00:00.123Z`): they bind identically on both backends and
//!   sort lexicographically = chronologically. Values are truncated to
//!   milliseconds on write; use [`now`] for a timestamp that round-trips.
//! * JSON is TEXT; bytes are BYTEA (Postgres) / BLOB (SQLite).
//!
//! ## Audit log
//!
//! The log itself is [`hallmark_audit`] (RFC 9162 Merkle tree, signed C2SP
//! checkpoints, receipts); this crate stores it and is its "personality" for
//! decisions. [`AuditLog`] runs one sequencer per process: batches of entries
//! (and their decision rows) are written with a signed checkpoint in one
//! transaction holding the log's write lock (`pg_advisory_xact_lock` on Postgres,
//! `BEGIN IMMEDIATE` on SQLite), so several processes form one gap-free log.
//! [`AuditLog::verify`] recomputes the tree from the stored leaves and checks every
//! checkpoint and the decisions table. See `docs/AUDIT_LOG.md`.

mod api_keys;
mod audit_log;
mod audit_log_sql;
mod audit_sequencer;
mod audit_verify;
mod cache;
mod db;
mod decision_log;
mod decision_queries;
mod error;
mod models;
mod review;
mod sign_log;
mod startup;
mod verification_queries;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod api_keys_tests;

#[cfg(test)]
mod audit_log_tests;

#[cfg(test)]
mod sign_log_tests;

pub use audit_log::{
    Appended, AuditLog, AuditLogConfig, StoredCheckpoint, DEFAULT_BATCH_MAX_ENTRIES,
};
pub use audit_verify::{LeafEntry, MAX_AUDIT_PAGE, VERIFY_PAGE_SIZE};
pub use cache::{Cache, DEFAULT_MEMORY_MAX_BYTES, DEFAULT_MEMORY_MAX_ENTRIES, KEY_PREFIX};
pub use db::{new_id, now, Backend, Store, AUDIT_ADVISORY_LOCK_KEY};
pub use decision_log::{IdempotencyKey, RecordedDecisions, MAX_DECISIONS_PER_CALL};
pub use decision_queries::DecisionFilter;
pub use error::StoreError;
pub use models::{
    ApiKeyRecord, AssetRecord, DecisionRecord, ManifestRecord, NewApiKey, NewDecision,
    VerificationRecord,
};
pub use review::{ReviewLease, REVIEW_LABELS};
pub use sign_log::{Claim, RequestKey, StoredResponse};
pub use startup::StartupLock;
pub use verification_queries::{VerificationFilter, VerificationSummary, MAX_VERIFICATIONS_PAGE};

/// Re-export of the audit types used in this crate's API.
pub use hallmark_audit::{
    EntryBody, LogFailure, LogFailureReason, LogReport, NoteSigner, NoteVerifier, Receipt,
};
