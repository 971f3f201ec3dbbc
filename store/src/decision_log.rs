//! The decision "personality" of the audit log: what a decision entry is, recording one or
//! many, and idempotency keys (a retried request gets its original receipts back).

use hallmark_audit::{EntryBody, MerkleTree};
use serde_json::json;
use sqlx::Row;

use crate::audit_log::{Appended, AuditLog};
use crate::audit_log_sql::proof_err;
use crate::audit_sequencer::Submission;
use crate::db::{check_non_empty, decision_from_row, now, to_i64, to_u64, DECISION_COLS};
use crate::error::StoreError;
use crate::models::{DecisionRecord, NewDecision};
use crate::new_id;

/// Most decisions one [`AuditLog::record_decisions`] call may record.
pub const MAX_DECISIONS_PER_CALL: usize = 1000;

/// An idempotency key as the store keeps it (IETF draft-ietf-httpapi-idempotency-key-header):
/// `key` is unique per `scope` (the API key id of the caller), `fingerprint` identifies the
/// request it was first used for (e.g. hex SHA-256 of the normalised request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Whose key space (the caller's API key id).
    pub scope: String,
    /// The client's `Idempotency-Key` value (1–255 bytes).
    pub key: String,
    /// Fingerprint of the request.
    pub fingerprint: String,
}

/// A stored idempotency key: the decisions it recorded are `audit_seq`
/// `[first_seq, first_seq + count)`, proved by the checkpoint of `tree_size`.
#[derive(Debug, Clone)]
pub(crate) struct StoredKey {
    pub(crate) fingerprint: String,
    pub(crate) first_seq: u64,
    pub(crate) count: u64,
    pub(crate) tree_size: u64,
}

/// Decisions recorded by [`AuditLog::record_decisions`], in request order, each with its
/// log entry in a signed, stored checkpoint.
#[derive(Debug, Clone)]
pub struct RecordedDecisions {
    /// Each decision and its appended entry (receipt).
    pub decisions: Vec<(DecisionRecord, Appended)>,
    /// `true` when the idempotency key was used before for the same request: nothing new
    /// was recorded and these are the original decisions and receipts.
    pub replayed: bool,
}

/// The row and the log entry of a new decision. Entry: `kind = "decision"`, `actor =
/// decided_by`, `timestamp = created_at`, `data = {id, verification_id, action, policy,
/// reason, decided_by}`.
fn decision_entry(d: &NewDecision) -> Result<(EntryBody, DecisionRecord), StoreError> {
    check_non_empty("action", &d.action)?;
    check_non_empty("decided_by", &d.decided_by)?;
    check_non_empty("verification_id", &d.verification_id)?;
    let record = DecisionRecord {
        id: new_id(),
        verification_id: d.verification_id.clone(),
        action: d.action.clone(),
        policy: d.policy.clone(),
        reason: d.reason.clone(),
        decided_by: d.decided_by.clone(),
        created_at: now(),
        audit_seq: 0,
    };
    let body = EntryBody::at(
        record.created_at,
        "decision",
        d.decided_by.clone(),
        json!({
            "id": record.id,
            "verification_id": record.verification_id,
            "action": record.action,
            "policy": record.policy,
            "reason": record.reason,
            "decided_by": record.decided_by,
        }),
    );
    Ok((body, record))
}

impl AuditLog {
    /// Record a decision: its row and its log entry commit together, in a signed
    /// checkpoint.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown verification; [`StoreError::Invalid`] for an
    /// empty action or actor; as [`AuditLog::append`].
    pub async fn record_decision(
        &self,
        d: &NewDecision,
    ) -> Result<(DecisionRecord, Appended), StoreError> {
        let mut out = self.record_decisions(std::slice::from_ref(d), None).await?;
        out.decisions
            .pop()
            .ok_or_else(|| StoreError::LogUnavailable("the sequencer answered nothing".into()))
    }

    /// Record 1–[`MAX_DECISIONS_PER_CALL`] decisions together: all or none, consecutive
    /// leaves under one signed checkpoint. With `idem`, a key already used by the same
    /// scope for the same fingerprint records nothing and returns the original decisions
    /// and receipts (`replayed`); two calls racing with one key record once.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty list, too many decisions, an empty field or a
    /// malformed key; [`StoreError::NotFound`] when a verification does not exist (nothing
    /// recorded); [`StoreError::IdempotencyConflict`] when the key was used for another
    /// fingerprint; as [`AuditLog::append`].
    pub async fn record_decisions(
        &self,
        ds: &[NewDecision],
        idem: Option<IdempotencyKey>,
    ) -> Result<RecordedDecisions, StoreError> {
        if ds.is_empty() || ds.len() > MAX_DECISIONS_PER_CALL {
            return Err(StoreError::Invalid(format!(
                "1 to {MAX_DECISIONS_PER_CALL} decisions per call, got {}",
                ds.len()
            )));
        }
        if let Some(k) = &idem {
            check_non_empty("idempotency scope", &k.scope)?;
            check_non_empty("idempotency fingerprint", &k.fingerprint)?;
            if k.key.is_empty() || k.key.len() > 255 {
                return Err(StoreError::Invalid(
                    "an idempotency key has 1 to 255 bytes".into(),
                ));
            }
        }
        let entries = ds
            .iter()
            .map(|d| decision_entry(d).map(|(b, r)| (b, Some(r))))
            .collect::<Result<Vec<_>, _>>()?;
        let out = self.submit(Submission { entries, idem }).await?;
        let decisions = out
            .items
            .into_iter()
            .map(|(a, d)| {
                d.map(|d| (d, a))
                    .ok_or_else(|| StoreError::Corrupt("a decision entry without its row".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordedDecisions {
            decisions,
            replayed: out.replayed,
        })
    }

    /// The original outcome of a stored idempotency key: its decision rows and leaves,
    /// proved against the checkpoint it was acknowledged with (every checkpoint is kept),
    /// so the receipts are the ones first returned.
    pub(crate) async fn replay(
        &self,
        tree: &MerkleTree,
        key: &StoredKey,
    ) -> Result<crate::audit_sequencer::Outcome, StoreError> {
        let (first, end) = (key.first_seq, key.first_seq + key.count);
        let sql = format!(
            "SELECT {DECISION_COLS} FROM decisions WHERE audit_seq >= $1 AND audit_seq < $2 \
             ORDER BY audit_seq"
        );
        let decisions = sqlx::query(&sql)
            .bind(to_i64(first, "audit_seq")?)
            .bind(to_i64(end, "audit_seq")?)
            .fetch_all(&self.store.pool)
            .await?;
        let leaves = sqlx::query(
            "SELECT leaf_index, body FROM audit_leaves WHERE leaf_index >= $1 AND leaf_index < $2 \
             ORDER BY leaf_index",
        )
        .bind(to_i64(first - 1, "leaf_index")?)
        .bind(to_i64(end - 1, "leaf_index")?)
        .fetch_all(&self.store.pool)
        .await?;
        let checkpoint = self.checkpoint_at(key.tree_size).await?;
        let missing = || {
            StoreError::Corrupt(format!(
                "decisions {first}..{end} recorded under an idempotency key are missing"
            ))
        };
        let checkpoint = checkpoint.ok_or_else(missing)?;
        if decisions.len() as u64 != key.count || leaves.len() as u64 != key.count {
            return Err(missing());
        }
        let mut items = Vec::with_capacity(decisions.len());
        for (d, l) in decisions.iter().zip(&leaves) {
            let record = decision_from_row(d)?;
            let leaf_index = to_u64(l.try_get("leaf_index")?, "leaf_index")?;
            if record.audit_seq != leaf_index + 1 {
                return Err(missing());
            }
            let appended = Appended {
                leaf_index,
                leaf_hash: tree.leaf(leaf_index).ok_or_else(missing)?,
                entry: l.try_get("body")?,
                tree_size: key.tree_size,
                proof: tree
                    .inclusion_proof(leaf_index, key.tree_size)
                    .map_err(proof_err)?,
                checkpoint: checkpoint.note.clone(),
            };
            items.push((appended, Some(record)));
        }
        Ok(crate::audit_sequencer::Outcome {
            items,
            replayed: true,
        })
    }
}
