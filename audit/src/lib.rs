//! # hallmark-audit — a verifiable, append-only log (RFC 9162 transparency log)
//!
//! Two layers, kept apart as Trillian keeps its log and its "personalities":
//!
//! * **The generic log** ([`merkle`], [`note`], [`checkpoint`], [`receipt`],
//!   [`verify`]): an RFC 9162 Merkle tree over opaque leaf bytes (SHA-256, `0x00`
//!   leaf / `0x01` node prefixes), inclusion and consistency proofs (generation and
//!   verification), checkpoints in the C2SP `tlog-checkpoint` format signed as C2SP
//!   `signed-note`s with Ed25519, receipts (entry + inclusion proof + checkpoint) and a
//!   streaming verifier that recomputes the tree from stored leaves and checks every
//!   stored checkpoint. It knows nothing about decisions.
//! * **The entry personality** ([`EntryBody`], [`canonical_json`]): what an audit
//!   entry is — an envelope `{seq, timestamp, kind, actor, data}` serialised as RFC
//!   8785 canonical JSON; that text is the leaf data. Admission (what may be logged,
//!   and the record it must agree with) lives in `hallmark-store`.
//!
//! The previous construction, a SHA-256 hash chain, is kept as [`chain`] to read and
//! verify old exports: its entries became the first leaves of the tree (same bodies,
//! leaf index = seq − 1). See `docs/AUDIT_LOG.md`.
//!
//! The crate is pure: no I/O, no clocks except [`EntryBody::new`]'s timestamp.
//!
//! ## Legacy hash chain
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
pub mod chain;
pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod receipt;
pub mod verify;

pub use canonical::{canonical_json, canonical_json_string, es6_number_to_string, is_canonical};
pub use chain::{
    entry_hash, format_timestamp, verify_chain, verify_json_lines, AuditEntry, AuditError,
    ChainFailure, ChainHead, ChainReport, ChainVerifier, EntryBody, FailureReason, StoredEntry,
    GENESIS_PREV_HASH,
};
pub use checkpoint::{Checkpoint, CheckpointError};
pub use merkle::{
    empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion, CompactRange, Hash,
    MerkleTree, ProofError,
};
pub use note::{NoteError, NoteSigner, NoteVerifier};
pub use receipt::{parse_hex_hash, Receipt, ReceiptError};
pub use verify::{LogFailure, LogFailureReason, LogReport, LogVerifier};
