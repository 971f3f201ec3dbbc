//! Entry model, hash computation and streaming chain verification.

use std::fmt;
use std::io::BufRead;

use chrono::{DateTime, SecondsFormat, Utc};
use ring::digest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical::{canonical_json, canonical_json_string};

/// `prev_hash` of the first entry (seq 1): 32 zero bytes.
pub const GENESIS_PREV_HASH: [u8; 32] = [0u8; 32];

/// Errors from building or converting entries (verification failures are
/// reported as [`ChainFailure`], not as this type).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    /// A hash was not 64 lowercase hex characters.
    #[error("invalid hash {0:?}: expected 64 lowercase hex characters")]
    InvalidHash(String),
    /// A stored body was not valid JSON.
    #[error("invalid body JSON: {0}")]
    InvalidBody(String),
}

/// `SHA-256(prev_hash ‖ canonical_body)` — the chain's link function.
pub fn entry_hash(prev_hash: &[u8; 32], canonical_body: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev_hash);
    ctx.update(canonical_body);
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Render a timestamp the way audit bodies carry it: RFC 3339, UTC, `Z`
/// suffix, millisecond precision (e.g. `2025-01-31T12:00:00.123Z`).
pub fn format_timestamp(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn decode_hash(s: &str) -> Result<[u8; 32], AuditError> {
    let well_formed = s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(AuditError::InvalidHash(s.chars().take(80).collect()));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| AuditError::InvalidHash(s.to_string()))?;
    Ok(out)
}

/// The caller-supplied part of an entry body. [`AuditEntry::new`] adds `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryBody {
    /// When the event happened (serialised at millisecond precision).
    pub timestamp: DateTime<Utc>,
    /// What kind of event this is, e.g. `"decision"`. Interpreted by the
    /// personality, not by this crate.
    pub kind: String,
    /// Who caused it (e.g. an API key id).
    pub actor: String,
    /// Kind-specific payload; should be a JSON object.
    pub data: Value,
}

impl EntryBody {
    /// A body stamped with the current time.
    pub fn new(kind: impl Into<String>, actor: impl Into<String>, data: Value) -> Self {
        Self::at(Utc::now(), kind, actor, data)
    }

    /// A body with an explicit timestamp.
    pub fn at(
        timestamp: DateTime<Utc>,
        kind: impl Into<String>,
        actor: impl Into<String>,
        data: Value,
    ) -> Self {
        Self {
            timestamp,
            kind: kind.into(),
            actor: actor.into(),
            data,
        }
    }

    /// The JSON object that is hashed for position `seq`.
    pub fn to_json(&self, seq: u64) -> Value {
        let mut m = Map::new();
        m.insert("seq".into(), Value::from(seq));
        m.insert(
            "timestamp".into(),
            Value::String(format_timestamp(self.timestamp)),
        );
        m.insert("kind".into(), Value::String(self.kind.clone()));
        m.insert("actor".into(), Value::String(self.actor.clone()));
        m.insert("data".into(), self.data.clone());
        Value::Object(m)
    }
}

/// Position and hash of the last entry of a chain (the "tree head" of this
/// linear log). Publish it to detect later truncation or forks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Sequence number of the last entry.
    pub seq: u64,
    /// `entry_hash` of the last entry, 64 lowercase hex characters.
    pub entry_hash: String,
}

impl ChainHead {
    fn hash_bytes(&self) -> Result<[u8; 32], AuditError> {
        decode_hash(&self.entry_hash)
    }
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1-based position in the log.
    pub seq: u64,
    /// `entry_hash` of entry `seq − 1` (hex); 64 zeros for `seq == 1`.
    pub prev_hash: String,
    /// `SHA-256(prev_hash bytes ‖ RFC 8785 canonical JSON of body)` (hex).
    pub entry_hash: String,
    /// The hashed body: an object with `seq`, `timestamp`, `kind`, `actor`,
    /// `data`.
    pub body: Value,
}

impl AuditEntry {
    /// Build the entry that follows `prev` (or the genesis entry when `prev`
    /// is `None`): sets `seq`, `prev_hash`, the body's `seq` and `entry_hash`.
    ///
    /// Fails only if `prev.entry_hash` is not 64 lowercase hex characters.
    pub fn new(prev: Option<&AuditEntry>, body: EntryBody) -> Result<Self, AuditError> {
        let head = prev.map(AuditEntry::head);
        Self::append_to(head.as_ref(), body)
    }

    /// Like [`AuditEntry::new`] but only needs the current head (what a
    /// database can read cheaply).
    pub fn append_to(head: Option<&ChainHead>, body: EntryBody) -> Result<Self, AuditError> {
        let (seq, prev) = match head {
            Some(h) => (h.seq + 1, h.hash_bytes()?),
            None => (1, GENESIS_PREV_HASH),
        };
        let body = body.to_json(seq);
        let hash = entry_hash(&prev, &canonical_json(&body));
        Ok(Self {
            seq,
            prev_hash: hex::encode(prev),
            entry_hash: hex::encode(hash),
            body,
        })
    }

    /// The RFC 8785 canonical bytes of `body` (what is hashed and stored).
    pub fn canonical_body(&self) -> Vec<u8> {
        canonical_json(&self.body)
    }

    /// Recompute `entry_hash` from `prev_hash` and `body` (hex). Compare with
    /// `self.entry_hash` to check the entry in isolation.
    pub fn compute_hash(&self) -> Result<String, AuditError> {
        let prev = decode_hash(&self.prev_hash)?;
        Ok(hex::encode(entry_hash(&prev, &self.canonical_body())))
    }

    /// This entry as a chain head.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            entry_hash: self.entry_hash.clone(),
        }
    }

    /// The storage form: body as canonical JSON text.
    pub fn to_stored(&self) -> StoredEntry {
        StoredEntry {
            seq: self.seq,
            prev_hash: self.prev_hash.clone(),
            entry_hash: self.entry_hash.clone(),
            body: canonical_json_string(&self.body),
        }
    }

    /// `body.kind`, if present.
    pub fn kind(&self) -> Option<&str> {
        self.body.get("kind").and_then(Value::as_str)
    }

    /// `body.actor`, if present.
    pub fn actor(&self) -> Option<&str> {
        self.body.get("actor").and_then(Value::as_str)
    }

    /// `body.timestamp`, if present and valid RFC 3339.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.body
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    }

    /// `body.data`, if present.
    pub fn data(&self) -> Option<&Value> {
        self.body.get("data")
    }
}

/// An entry as persisted: the body is the exact JSON text that was hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    /// 1-based position.
    pub seq: u64,
    /// Hex hash of the previous entry.
    pub prev_hash: String,
    /// Hex hash of this entry.
    pub entry_hash: String,
    /// Canonical JSON text of the body, byte-for-byte as hashed.
    pub body: String,
}

impl StoredEntry {
    /// Parse the body text into an [`AuditEntry`] (no verification).
    pub fn to_entry(&self) -> Result<AuditEntry, AuditError> {
        let body: Value =
            serde_json::from_str(&self.body).map_err(|e| AuditError::InvalidBody(e.to_string()))?;
        Ok(AuditEntry {
            seq: self.seq,
            prev_hash: self.prev_hash.clone(),
            entry_hash: self.entry_hash.clone(),
            body,
        })
    }
}

/// Why verification stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FailureReason {
    /// The recomputed hash differs from the stored `entry_hash` (the body or
    /// the hash was altered).
    HashMismatch,
    /// `prev_hash` differs from the previous entry's `entry_hash`.
    PrevHashMismatch,
    /// The entry at this position does not have the expected `seq` (an entry
    /// was deleted, inserted or moved). `expected` is the missing seq.
    SeqGap {
        /// The sequence number that should have come next.
        expected: u64,
    },
    /// `body.seq` differs from the entry's `seq`.
    SeqMismatchInBody,
    /// The stored body text is valid JSON but not byte-identical to its RFC
    /// 8785 canonical form (it was edited after hashing).
    BodyNotCanonical,
    /// Structurally invalid: bad hex, body not an object, missing envelope
    /// fields, unparsable JSON.
    Malformed,
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::HashMismatch => f.write_str("hash mismatch"),
            FailureReason::PrevHashMismatch => f.write_str("prev_hash mismatch"),
            FailureReason::SeqGap { expected } => write!(f, "seq gap (expected {expected})"),
            FailureReason::SeqMismatchInBody => f.write_str("seq in body differs"),
            FailureReason::BodyNotCanonical => f.write_str("body not canonical"),
            FailureReason::Malformed => f.write_str("malformed entry"),
        }
    }
}

/// The first point at which a chain failed to verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {reason}: {detail}")]
pub struct ChainFailure {
    /// The sequence number at which verification failed: the offending
    /// entry's seq, or — for [`FailureReason::SeqGap`] — the seq that was
    /// expected (e.g. the deleted entry).
    pub seq: u64,
    /// Classification.
    pub reason: FailureReason,
    /// Human-readable explanation.
    pub detail: String,
}

/// Result of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// True when every entry verified (an empty log is valid).
    pub valid: bool,
    /// Number of entries that verified successfully (the verified prefix).
    pub entries_checked: u64,
    /// Seq of the last verified entry.
    pub head_seq: Option<u64>,
    /// `entry_hash` of the last verified entry.
    pub head_hash: Option<String>,
    /// Where and why verification stopped, if it did.
    pub first_failure: Option<ChainFailure>,
}

/// Incremental verifier: feed entries in order (e.g. page by page from a
/// database), then call [`ChainVerifier::report`].
///
/// After the first failure the verifier is "stuck": every further push
/// returns that same failure.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: u64,
    head: [u8; 32],
    head_hex: Option<String>,
    checked: u64,
    failure: Option<ChainFailure>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// Verifier expecting the genesis entry (seq 1) first.
    pub fn new() -> Self {
        Self {
            next_seq: 1,
            head: GENESIS_PREV_HASH,
            head_hex: None,
            checked: 0,
            failure: None,
        }
    }

    /// Verifier continuing after a trusted, previously verified head (for
    /// incremental verification). Fails if the head hash is malformed.
    pub fn resume_from(head: &ChainHead) -> Result<Self, AuditError> {
        Ok(Self {
            next_seq: head.seq + 1,
            head: head.hash_bytes()?,
            head_hex: Some(head.entry_hash.clone()),
            checked: 0,
            failure: None,
        })
    }

    /// Verify the next entry (body given as a parsed value).
    pub fn push(&mut self, entry: &AuditEntry) -> Result<(), ChainFailure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let canonical = canonical_json(&entry.body);
        let r = self.check(
            entry.seq,
            &entry.prev_hash,
            &entry.entry_hash,
            &entry.body,
            &canonical,
        );
        self.record(r)
    }

    /// Verify the next entry in its stored form. In addition to the checks of
    /// [`ChainVerifier::push`], the body text must be valid JSON and
    /// byte-identical to its RFC 8785 canonical form. The hash is computed
    /// over the stored bytes exactly as they are.
    pub fn push_stored(&mut self, entry: &StoredEntry) -> Result<(), ChainFailure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let r = self.check_stored(entry);
        self.record(r)
    }

    /// Record a failure that the caller detected outside the entries
    /// themselves (e.g. an unreadable row); later pushes return it.
    pub fn fail(&mut self, failure: ChainFailure) {
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
    }

    /// The seq the verifier expects next.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Entries verified successfully so far.
    pub fn entries_checked(&self) -> u64 {
        self.checked
    }

    /// Head of the verified prefix, if any entry was verified (or the verifier
    /// was resumed from a head).
    pub fn head(&self) -> Option<ChainHead> {
        self.head_hex.as_ref().map(|h| ChainHead {
            seq: self.next_seq - 1,
            entry_hash: h.clone(),
        })
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<&ChainFailure> {
        self.failure.as_ref()
    }

    /// Summarise.
    pub fn report(&self) -> ChainReport {
        let head = self.head();
        ChainReport {
            valid: self.failure.is_none(),
            entries_checked: self.checked,
            head_seq: head.as_ref().map(|h| h.seq),
            head_hash: head.map(|h| h.entry_hash),
            first_failure: self.failure.clone(),
        }
    }

    /// Consume and summarise.
    pub fn finish(self) -> ChainReport {
        self.report()
    }

    fn record(&mut self, r: Result<[u8; 32], ChainFailure>) -> Result<(), ChainFailure> {
        match r {
            Ok(hash) => {
                self.head = hash;
                self.head_hex = Some(hex::encode(hash));
                self.next_seq += 1;
                self.checked += 1;
                Ok(())
            }
            Err(f) => {
                self.failure = Some(f.clone());
                Err(f)
            }
        }
    }

    fn failure_at(seq: u64, reason: FailureReason, detail: impl Into<String>) -> ChainFailure {
        ChainFailure {
            seq,
            reason,
            detail: detail.into(),
        }
    }

    fn check_stored(&self, entry: &StoredEntry) -> Result<[u8; 32], ChainFailure> {
        let seq = entry.seq;
        self.check_seq(seq)?;
        let body: Value = serde_json::from_str(&entry.body).map_err(|e| {
            Self::failure_at(
                seq,
                FailureReason::Malformed,
                format!("body is not valid JSON: {e}"),
            )
        })?;
        let canonical = canonical_json(&body);
        if canonical != entry.body.as_bytes() {
            return Err(Self::failure_at(
                seq,
                FailureReason::BodyNotCanonical,
                "stored body text is not byte-identical to its RFC 8785 canonical form",
            ));
        }
        self.check(
            seq,
            &entry.prev_hash,
            &entry.entry_hash,
            &body,
            entry.body.as_bytes(),
        )
    }

    fn check_seq(&self, seq: u64) -> Result<(), ChainFailure> {
        if seq != self.next_seq {
            let expected = self.next_seq;
            return Err(Self::failure_at(
                expected,
                FailureReason::SeqGap { expected },
                format!("expected seq {expected}, found seq {seq}"),
            ));
        }
        Ok(())
    }

    fn check(
        &self,
        seq: u64,
        prev_hash: &str,
        stored_hash: &str,
        body: &Value,
        canonical: &[u8],
    ) -> Result<[u8; 32], ChainFailure> {
        self.check_seq(seq)?;
        let malformed = |d: String| Self::failure_at(seq, FailureReason::Malformed, d);
        let prev = decode_hash(prev_hash).map_err(|e| malformed(format!("prev_hash: {e}")))?;
        let stored = decode_hash(stored_hash).map_err(|e| malformed(format!("entry_hash: {e}")))?;
        check_envelope(body).map_err(malformed)?;
        let body_seq = body.get("seq").and_then(Value::as_u64);
        if body_seq != Some(seq) {
            return Err(Self::failure_at(
                seq,
                FailureReason::SeqMismatchInBody,
                format!("entry seq {seq} but body.seq is {:?}", body.get("seq")),
            ));
        }
        if prev != self.head {
            return Err(Self::failure_at(
                seq,
                FailureReason::PrevHashMismatch,
                format!(
                    "prev_hash {prev_hash} does not match previous entry_hash {}",
                    hex::encode(self.head)
                ),
            ));
        }
        let computed = entry_hash(&prev, canonical);
        if computed != stored {
            return Err(Self::failure_at(
                seq,
                FailureReason::HashMismatch,
                format!(
                    "stored entry_hash {stored_hash} but computed {}",
                    hex::encode(computed)
                ),
            ));
        }
        Ok(computed)
    }
}

fn check_envelope(body: &Value) -> Result<(), String> {
    let obj = body
        .as_object()
        .ok_or_else(|| "body is not a JSON object".to_string())?;
    if !obj.get("seq").is_some_and(Value::is_u64) {
        return Err("body.seq missing or not an unsigned integer".into());
    }
    let ts = obj
        .get("timestamp")
        .and_then(Value::as_str)
        .ok_or_else(|| "body.timestamp missing or not a string".to_string())?;
    DateTime::parse_from_rfc3339(ts).map_err(|e| format!("body.timestamp not RFC 3339: {e}"))?;
    if obj
        .get("kind")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("body.kind missing or empty".into());
    }
    if !obj.get("actor").is_some_and(Value::is_string) {
        return Err("body.actor missing or not a string".into());
    }
    if !obj.contains_key("data") {
        return Err("body.data missing".into());
    }
    Ok(())
}

/// Verify a complete chain from genesis. Stops at the first failure.
pub fn verify_chain(entries: impl IntoIterator<Item = AuditEntry>) -> ChainReport {
    let mut v = ChainVerifier::new();
    for e in entries {
        if v.push(&e).is_err() {
            break;
        }
    }
    v.finish()
}

/// Verify a JSON Lines export (one [`AuditEntry`] JSON object per line, blank
/// lines ignored) from genesis — what an auditor runs offline. A line that
/// cannot be read or parsed is reported as [`FailureReason::Malformed`] at the
/// seq expected there.
pub fn verify_json_lines(reader: impl BufRead) -> ChainReport {
    let mut v = ChainVerifier::new();
    for (lineno, line) in reader.lines().enumerate() {
        let seq = v.next_seq();
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                v.fail(ChainVerifier::failure_at(
                    seq,
                    FailureReason::Malformed,
                    format!("line {}: read error: {e}", lineno + 1),
                ));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AuditEntry>(&line) {
            Ok(entry) => {
                if v.push(&entry).is_err() {
                    break;
                }
            }
            Err(e) => {
                v.fail(ChainVerifier::failure_at(
                    seq,
                    FailureReason::Malformed,
                    format!("line {}: not an audit entry: {e}", lineno + 1),
                ));
                break;
            }
        }
    }
    v.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(n: u64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 1..=n {
            let body = EntryBody::new(
                "decision",
                format!("key-{}", i % 3),
                json!({"id": format!("d{i}"), "action": "block", "note": "ünïcödé \u{1F600}"}),
            );
            let e = AuditEntry::new(out.last(), body).unwrap();
            out.push(e);
        }
        out
    }

    fn failure(report: &ChainReport) -> &ChainFailure {
        report.first_failure.as_ref().expect("expected failure")
    }

    #[test]
    fn hundred_entries_verify() {
        let entries = build(100);
        assert_eq!(entries[0].prev_hash, "0".repeat(64));
        assert_eq!(entries[0].seq, 1);
        assert_eq!(entries[99].seq, 100);
        for w in entries.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].entry_hash);
        }
        let r = verify_chain(entries.clone());
        assert!(r.valid, "{r:?}");
        assert_eq!(r.entries_checked, 100);
        assert_eq!(r.head_seq, Some(100));
        assert_eq!(
            r.head_hash.as_deref(),
            Some(entries[99].entry_hash.as_str())
        );
        assert!(r.first_failure.is_none());
        // stored form verifies too
        let mut v = ChainVerifier::new();
        for e in &entries {
            v.push_stored(&e.to_stored()).unwrap();
        }
        assert!(v.finish().valid);
    }

    #[test]
    fn empty_chain_is_valid() {
        let r = verify_chain(Vec::new());
        assert!(r.valid);
        assert_eq!(r.entries_checked, 0);
        assert_eq!(r.head_hash, None);
    }

    #[test]
    fn hash_definition() {
        let e = &build(1)[0];
        let mut data = vec![0u8; 32];
        data.extend_from_slice(&canonical_json(&e.body));
        let expected = hex::encode(digest::digest(&digest::SHA256, &data));
        assert_eq!(e.entry_hash, expected);
        assert_eq!(e.compute_hash().unwrap(), expected);
        assert_eq!(e.body["seq"], json!(1));
        assert_eq!(e.kind(), Some("decision"));
        let ts = e.body["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
    }

    #[test]
    fn tampered_body_names_seq() {
        for target in [1usize, 2, 50, 100] {
            let mut entries = build(100);
            entries[target - 1].body["data"]["action"] = json!("allow");
            let r = verify_chain(entries);
            assert!(!r.valid);
            let f = failure(&r);
            assert_eq!(f.seq, target as u64);
            assert_eq!(f.reason, FailureReason::HashMismatch);
            assert_eq!(r.entries_checked, target as u64 - 1);
        }
    }

    fn flip_hex(s: &str, idx: usize) -> String {
        let mut b = s.as_bytes().to_vec();
        b[idx] = if b[idx] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn flipped_byte_in_stored_body_names_seq() {
        let entries = build(100);
        for target in [1usize, 37, 100] {
            let stored: Vec<StoredEntry> = entries.iter().map(AuditEntry::to_stored).collect();
            let body_len = stored[target - 1].body.len();
            for idx in [0usize, 5, body_len / 2, body_len - 1] {
                let mut stored = stored.clone();
                let mut bytes = stored[target - 1].body.clone().into_bytes();
                bytes[idx] ^= 0x01;
                stored[target - 1].body = String::from_utf8_lossy(&bytes).into_owned();
                let mut v = ChainVerifier::new();
                for s in &stored {
                    if v.push_stored(s).is_err() {
                        break;
                    }
                }
                let r = v.finish();
                assert!(!r.valid);
                assert_eq!(failure(&r).seq, target as u64, "idx {idx}: {r:?}");
            }
        }
    }

    #[test]
    fn non_canonical_stored_body_is_flagged() {
        let entries = build(5);
        let mut stored: Vec<StoredEntry> = entries.iter().map(AuditEntry::to_stored).collect();
        // Semantically identical, but with whitespace: hash over canonical
        // form would still match, so the canonical check must catch it.
        let v: Value = serde_json::from_str(&stored[2].body).unwrap();
        stored[2].body = serde_json::to_string_pretty(&v).unwrap();
        let mut ver = ChainVerifier::new();
        let mut err = None;
        for s in &stored {
            if let Err(e) = ver.push_stored(s) {
                err = Some(e);
                break;
            }
        }
        let e = err.unwrap();
        assert_eq!(e.seq, 3);
        assert_eq!(e.reason, FailureReason::BodyNotCanonical);
    }

    #[test]
    fn flipped_entry_hash_names_seq() {
        for target in [1usize, 64, 100] {
            let mut entries = build(100);
            let h = flip_hex(&entries[target - 1].entry_hash, 10);
            entries[target - 1].entry_hash = h;
            let r = verify_chain(entries);
            let f = failure(&r);
            assert_eq!(f.seq, target as u64);
            assert_eq!(f.reason, FailureReason::HashMismatch);
        }
    }

    #[test]
    fn flipped_prev_hash_names_seq() {
        for target in [1usize, 2, 99, 100] {
            let mut entries = build(100);
            let h = flip_hex(&entries[target - 1].prev_hash, 63);
            entries[target - 1].prev_hash = h;
            let r = verify_chain(entries);
            let f = failure(&r);
            assert_eq!(f.seq, target as u64);
            assert_eq!(f.reason, FailureReason::PrevHashMismatch);
        }
    }

    #[test]
    fn deleted_row_names_seq() {
        for target in [1usize, 42, 99] {
            let mut entries = build(100);
            entries.remove(target - 1);
            let r = verify_chain(entries);
            let f = failure(&r);
            assert_eq!(f.seq, target as u64);
            assert_eq!(
                f.reason,
                FailureReason::SeqGap {
                    expected: target as u64
                }
            );
        }
    }

    #[test]
    fn deleted_row_with_renumbering_is_caught() {
        // Attacker deletes entry 42 and renumbers the rest (seq column only).
        let mut entries = build(100);
        entries.remove(41);
        for (i, e) in entries.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        let r = verify_chain(entries);
        let f = failure(&r);
        assert_eq!(f.seq, 42);
        assert_eq!(f.reason, FailureReason::SeqMismatchInBody);
    }

    #[test]
    fn reordered_rows_names_seq() {
        let mut entries = build(100);
        entries.swap(9, 10); // seq 10 and 11
        let r = verify_chain(entries);
        let f = failure(&r);
        assert_eq!(f.seq, 10);
        assert_eq!(f.reason, FailureReason::SeqGap { expected: 10 });

        // Reordering including the seq column (swap positions 10/11 but keep
        // the seq numbers ascending) is caught by the body seq.
        let mut entries = build(100);
        entries.swap(9, 10);
        entries[9].seq = 10;
        entries[10].seq = 11;
        let r = verify_chain(entries);
        let f = failure(&r);
        assert_eq!(f.seq, 10);
        assert_eq!(f.reason, FailureReason::SeqMismatchInBody);
    }

    #[test]
    fn rehashed_forgery_breaks_next_link() {
        // Modify a body and recompute its hash: the next entry's prev_hash no
        // longer matches.
        let mut entries = build(10);
        entries[4].body["data"]["action"] = json!("allow");
        entries[4].entry_hash = entries[4].compute_hash().unwrap();
        let r = verify_chain(entries);
        let f = failure(&r);
        assert_eq!(f.seq, 6);
        assert_eq!(f.reason, FailureReason::PrevHashMismatch);
    }

    #[test]
    fn malformed_entries() {
        let mut entries = build(3);
        entries[1].body = json!({"seq": 2, "kind": "x"});
        let r = verify_chain(entries);
        assert_eq!(failure(&r).seq, 2);
        assert_eq!(failure(&r).reason, FailureReason::Malformed);

        let mut entries = build(3);
        entries[2].entry_hash = entries[2].entry_hash.to_uppercase();
        let r = verify_chain(entries);
        assert_eq!(failure(&r).reason, FailureReason::Malformed);
        assert_eq!(failure(&r).seq, 3);
    }

    #[test]
    fn streaming_verifier_resume_and_sticky_failure() {
        let entries = build(20);
        let mut v = ChainVerifier::new();
        for e in &entries[..10] {
            v.push(e).unwrap();
        }
        let head = v.head().unwrap();
        assert_eq!(head, entries[9].head());
        let mut v2 = ChainVerifier::resume_from(&head).unwrap();
        for e in &entries[10..] {
            v2.push(e).unwrap();
        }
        let r = v2.finish();
        assert!(r.valid);
        assert_eq!(r.entries_checked, 10);
        assert_eq!(r.head_seq, Some(20));

        let mut v3 = ChainVerifier::new();
        let err = v3.push(&entries[1]).unwrap_err();
        assert_eq!(v3.push(&entries[0]).unwrap_err(), err);
    }

    #[test]
    fn serde_round_trip_and_json_lines() {
        let entries = build(10);
        let mut jsonl = String::new();
        for e in &entries {
            let line = serde_json::to_string(e).unwrap();
            let back: AuditEntry = serde_json::from_str(&line).unwrap();
            assert_eq!(&back, e);
            jsonl.push_str(&line);
            jsonl.push('\n');
        }
        let r = verify_json_lines(jsonl.as_bytes());
        assert!(r.valid, "{r:?}");
        assert_eq!(r.entries_checked, 10);

        let tampered: String = jsonl
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let l = if i == 3 {
                    l.replace("\"block\"", "\"allow\"")
                } else {
                    l.to_string()
                };
                l + "\n"
            })
            .collect();
        let r = verify_json_lines(tampered.as_bytes());
        assert_eq!(failure(&r).seq, 4);

        let broken = jsonl.replacen("{\"seq\":3", "{\"sek\":3", 1);
        let r = verify_json_lines(broken.as_bytes());
        assert_eq!(failure(&r).seq, 3);

        let report_json = serde_json::to_value(&r).unwrap();
        assert_eq!(report_json["valid"], json!(false));
        let back: ChainReport = serde_json::from_value(report_json).unwrap();
        assert_eq!(back, r);
        let gap = ChainFailure {
            seq: 5,
            reason: FailureReason::SeqGap { expected: 5 },
            detail: String::new(),
        };
        assert_eq!(
            serde_json::to_value(&gap).unwrap()["reason"],
            json!({"type": "seq_gap", "expected": 5})
        );
    }
}
