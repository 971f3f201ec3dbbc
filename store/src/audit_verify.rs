//! Reading and re-verifying the stored audit log, and the decision personality's
//! checks: every leaf is a well-formed canonical entry at its position, and the
//! decisions table agrees with the decision leaves (both ways).

use std::collections::BTreeMap;

use hallmark_audit::{
    canonical_json_string, ChainVerifier, LogFailure, LogFailureReason, LogReport, LogVerifier,
    StoredEntry,
};
use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use crate::audit_log::{checkpoint_from_row, AuditLog};
use crate::db::{decision_from_row, to_i64, to_u64, ts_text, DECISION_COLS};
use crate::error::StoreError;
use crate::models::DecisionRecord;

/// Leaves read per page by [`AuditLog::verify`].
pub const VERIFY_PAGE_SIZE: u32 = 1000;

/// Largest page [`AuditLog::list_entries`] returns.
pub const MAX_AUDIT_PAGE: u32 = 10_000;

/// One stored leaf.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeafEntry {
    /// 0-based leaf index.
    pub leaf_index: u64,
    /// `leaf_index + 1`, as in the entry's body.
    pub seq: u64,
    /// Stored leaf hash (hex), if any.
    pub leaf_hash: Option<String>,
    /// The leaf data exactly as stored (what is hashed).
    pub entry: String,
    /// The same, parsed (null when it is not JSON).
    pub body: Value,
}

impl AuditLog {
    /// Leaves with `leaf_index >= from`, ascending, at most `limit` (capped at
    /// [`MAX_AUDIT_PAGE`]).
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_entries(&self, from: u64, limit: u32) -> Result<Vec<LeafEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT leaf_index, leaf_hash, body FROM audit_leaves WHERE leaf_index >= $1 \
             ORDER BY leaf_index LIMIT $2",
        )
        .bind(to_i64(from, "from")?)
        .bind(i64::from(limit.min(MAX_AUDIT_PAGE)))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let leaf_index = to_u64(r.try_get("leaf_index")?, "leaf_index")?;
                let entry: String = r.try_get("body")?;
                Ok(LeafEntry {
                    leaf_index,
                    seq: leaf_index + 1,
                    leaf_hash: r.try_get("leaf_hash")?,
                    body: serde_json::from_str(&entry).unwrap_or(Value::Null),
                    entry,
                })
            })
            .collect()
    }

    /// Recompute the tree from the stored leaves, check every stored checkpoint's
    /// signature (this instance's key) and root, check each leaf is a canonical
    /// entry at its position, and that the decisions table agrees with the decision
    /// leaves. Names the first failing entry (see [`LogVerifier`]).
    ///
    /// # Errors
    /// Database errors only; findings are in the report.
    pub async fn verify(&self) -> Result<LogReport, StoreError> {
        let pool = &self.store.pool;
        let cps = sqlx::query(
            "SELECT tree_size, root_hash, note FROM audit_checkpoints ORDER BY tree_size",
        )
        .fetch_all(pool)
        .await?;
        let mut checkpoints = Vec::with_capacity(cps.len());
        for r in &cps {
            let c = checkpoint_from_row(r)?;
            checkpoints.push((c.tree_size, c.note));
        }
        let mut v = LogVerifier::new(self.signer.verifier(), checkpoints);
        let mut next: i64 = 0;
        loop {
            let rows = sqlx::query(
                "SELECT leaf_index, leaf_hash, body FROM audit_leaves WHERE leaf_index >= $1 \
                 ORDER BY leaf_index LIMIT $2",
            )
            .bind(next)
            .bind(i64::from(VERIFY_PAGE_SIZE))
            .fetch_all(pool)
            .await?;
            let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                break;
            };
            let lo: i64 = first.try_get("leaf_index")?;
            let hi: i64 = last.try_get("leaf_index")?;
            let sql = format!(
                "SELECT {DECISION_COLS} FROM decisions WHERE audit_seq > $1 AND audit_seq <= $2"
            );
            let drows = sqlx::query(&sql)
                .bind(lo)
                .bind(hi + 1)
                .fetch_all(pool)
                .await?;
            let mut decisions: BTreeMap<u64, Result<DecisionRecord, String>> = BTreeMap::new();
            for r in &drows {
                let seq: i64 = r.try_get("audit_seq")?;
                decisions.insert(
                    to_u64(seq, "audit_seq")?,
                    decision_from_row(r).map_err(|e| e.to_string()),
                );
            }
            for r in &rows {
                let index = to_u64(r.try_get("leaf_index")?, "leaf_index")?;
                let body: String = r.try_get("body")?;
                let stored: Option<String> = r.try_get("leaf_hash")?;
                let stored = match stored.as_deref().map(hallmark_audit::parse_hex_hash) {
                    Some(Ok(h)) => Some(h),
                    Some(Err(e)) => {
                        v.fail_exact(LogFailure::exact(
                            index,
                            LogFailureReason::LeafHashMismatch,
                            e.to_string(),
                        ));
                        None
                    }
                    None => None,
                };
                // The leaf hash first: of two findings at one entry, a changed log entry
                // is reported before the record that now disagrees with it.
                v.push_leaf(index, body.as_bytes(), stored.as_ref());
                if let Err(f) = check_entry(index, &body, decisions.remove(&(index + 1))) {
                    v.fail_exact(f);
                }
            }
            for (seq, _) in decisions {
                v.fail_exact(LogFailure::exact(
                    seq - 1,
                    LogFailureReason::RecordMismatch,
                    format!(
                        "decision with audit_seq {seq} but leaf {} is no decision",
                        seq - 1
                    ),
                ));
            }
            next = hi + 1;
            if rows.len() < VERIFY_PAGE_SIZE as usize {
                break;
            }
        }
        let row = sqlx::query("SELECT MIN(audit_seq) AS m FROM decisions WHERE audit_seq > $1")
            .bind(next)
            .fetch_one(pool)
            .await?;
        let orphan: Option<i64> = row.try_get("m")?;
        if let Some(seq) = orphan {
            let seq = to_u64(seq, "audit_seq")?;
            v.fail_exact(LogFailure::exact(
                seq.saturating_sub(1),
                LogFailureReason::RecordMismatch,
                format!("decision with audit_seq {seq} has no leaf"),
            ));
        }
        Ok(v.finish())
    }
}

fn malformed(index: u64, detail: impl Into<String>) -> LogFailure {
    LogFailure::exact(index, LogFailureReason::MalformedEntry, detail)
}

/// The personality's check of one leaf, and of the decision row logged at its seq.
fn check_entry(
    index: u64,
    text: &str,
    decision: Option<Result<DecisionRecord, String>>,
) -> Result<(), LogFailure> {
    let body: Value = serde_json::from_str(text)
        .map_err(|e| malformed(index, format!("entry is not JSON: {e}")))?;
    if canonical_json_string(&body) != text {
        return Err(malformed(index, "entry is not RFC 8785 canonical JSON"));
    }
    if body.get("seq").and_then(Value::as_u64) != Some(index + 1) {
        return Err(malformed(index, format!("entry seq is not {}", index + 1)));
    }
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
    let mismatch = |d: String| LogFailure::exact(index, LogFailureReason::RecordMismatch, d);
    match (kind, decision) {
        ("decision", None) => Err(mismatch(format!(
            "decision entry at seq {} has no decisions row",
            index + 1
        ))),
        ("decision", Some(Err(e))) => Err(mismatch(format!("decisions row unreadable: {e}"))),
        ("decision", Some(Ok(d))) => {
            let data = body.get("data").cloned().unwrap_or(Value::Null);
            let field = |k: &str| {
                data.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let checks = [
                ("id", field("id"), d.id),
                (
                    "verification_id",
                    field("verification_id"),
                    d.verification_id,
                ),
                ("action", field("action"), d.action),
                ("policy", field("policy"), d.policy),
                ("reason", field("reason"), d.reason),
                ("decided_by", field("decided_by"), d.decided_by.clone()),
                (
                    "actor",
                    body.get("actor")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    d.decided_by,
                ),
                (
                    "created_at",
                    body.get("timestamp")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    ts_text(d.created_at),
                ),
            ];
            for (name, logged, row) in checks {
                if logged != row {
                    return Err(mismatch(format!(
                        "decisions row {name} is {row:?} but the log says {logged:?}"
                    )));
                }
            }
            Ok(())
        }
        (_, Some(_)) => Err(mismatch(format!(
            "a decisions row claims seq {} but that entry is a {kind:?}",
            index + 1
        ))),
        (_, None) => Ok(()),
    }
}

/// Before the first checkpoint is signed over migrated chain entries: the renamed
/// chain table must verify as a hash chain, and its bodies must be the leaves.
pub(crate) async fn check_legacy_chain(
    conn: &mut AnyConnection,
    size: u64,
) -> Result<(), StoreError> {
    let rows = sqlx::query(
        "SELECT c.seq AS seq, c.prev_hash AS prev_hash, c.entry_hash AS entry_hash, \
         c.body AS body, l.body AS leaf FROM legacy_audit_chain c \
         LEFT JOIN audit_leaves l ON l.leaf_index = c.seq - 1 ORDER BY c.seq",
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() as u64 != size {
        return Err(StoreError::LogUnavailable(format!(
            "{size} leaves but {} migrated chain entries: not adopting them",
            rows.len()
        )));
    }
    let mut chain = ChainVerifier::new();
    for r in &rows {
        let e = StoredEntry {
            seq: to_u64(r.try_get("seq")?, "seq")?,
            prev_hash: r.try_get("prev_hash")?,
            entry_hash: r.try_get("entry_hash")?,
            body: r.try_get("body")?,
        };
        let leaf: Option<String> = r.try_get("leaf")?;
        if leaf.as_deref() != Some(e.body.as_str()) {
            return Err(StoreError::LogUnavailable(format!(
                "leaf {} differs from chain entry {}: not adopting",
                e.seq - 1,
                e.seq
            )));
        }
        if let Err(f) = chain.push_stored(&e) {
            return Err(StoreError::LogUnavailable(format!(
                "the migrated hash chain does not verify: {f}"
            )));
        }
    }
    Ok(())
}
