//! # hallmark-audit — a generic tamper-evident, append-only log
//!
//! This crate is deliberately *generic*: it knows about sequence numbers,
//! hashes, a small envelope (`seq`, `timestamp`, `kind`, `actor`, `data`) and
//! nothing else. What a "decision" (or any other `kind`) means is the business
//! of the caller — in the spirit of Trillian's "generic log + personality"
//! split, the personality lives in `hallmark-store`/`hallmark-api`, the log
//! lives here. The crate is pure: no I/O, no clocks except
//! [`EntryBody::new`]'s convenience timestamp.
//!
//! ## Construction (hash chain)
//!
//! Entries are numbered `seq = 1, 2, 3, …` without gaps. Each entry carries
//! the hash of its predecessor and its own hash:
//!
//! ```text
//! prev_hash(1)   = 0x00 × 32                      (genesis)
//! prev_hash(n)   = entry_hash(n − 1)
//! entry_hash(n)  = SHA-256( prev_hash(n) as 32 raw bytes
//!                         ‖ JCS(body(n)) )         (RFC 8785 canonical JSON)
//! ```
//!
//! Hashes are rendered as 64 lowercase hex characters. `body(n)` is a JSON
//! object that itself contains `"seq": n`, so an entry cannot be moved to a
//! different position without changing its hash. Because every hash commits
//! to the one before it, modifying, deleting, inserting or re-ordering any
//! entry breaks verification at (or right after) that entry; truncating the
//! *tail* can only be detected by comparing against a previously published
//! head (`seq`, `entry_hash`) — see [`ChainVerifier::resume_from`] and
//! [`ChainReport::head_hash`].
//!
//! Canonicalisation follows [RFC 8785] (JSON Canonicalization Scheme), see
//! [`canonical_json`]. Stores keep the body as the exact canonical text that
//! was hashed; [`ChainVerifier::push_stored`] additionally flags stored text
//! that is not byte-identical to its canonical form (someone edited the
//! stored JSON, even if the edit is semantically neutral).
//!
//! ## Offline verification
//!
//! Entries and reports are `serde` types. An auditor can export the log as
//! JSON Lines (one [`AuditEntry`] per line) and verify it with
//! [`verify_json_lines`] using exactly this code.
//!
//! [RFC 8785]: https://www.rfc-editor.org/rfc/rfc8785

pub mod canonical;
mod chain;

pub use canonical::{canonical_json, canonical_json_string, es6_number_to_string, is_canonical};
pub use chain::{
    entry_hash, format_timestamp, verify_chain, verify_json_lines, AuditEntry, AuditError,
    ChainFailure, ChainHead, ChainReport, ChainVerifier, EntryBody, FailureReason, StoredEntry,
    GENESIS_PREV_HASH,
};
