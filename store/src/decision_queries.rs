//! Listing decisions (the moderation record, read side).

use crate::db::{decision_from_row, to_i64, DECISION_COLS};
use crate::error::StoreError;
use crate::models::DecisionRecord;
use crate::Store;

/// Filter of [`Store::list_decisions`]; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    /// Decisions about this verification.
    pub verification_id: Option<String>,
    /// Decided by this actor (API key id).
    pub decided_by: Option<String>,
    /// With this action.
    pub action: Option<String>,
    /// `created_at >= since` (RFC 3339 text, compared as stored).
    pub since: Option<String>,
    /// `created_at < until`.
    pub until: Option<String>,
    /// Cursor: only decisions with `audit_seq > after_seq`.
    pub after_seq: u64,
}

impl Store {
    /// Decisions matching `f`, ascending by `audit_seq` (log order), at most `limit`
    /// (1–1000). Page with `after_seq` = the last `audit_seq` returned.
    ///
    /// # Errors
    /// Database errors; [`StoreError::Invalid`] for a cursor past `i64::MAX`.
    pub async fn list_decisions(
        &self,
        f: &DecisionFilter,
        limit: u32,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let sql = format!(
            "SELECT {DECISION_COLS} FROM decisions WHERE audit_seq > $1 \
             AND ($2 IS NULL OR verification_id = $2) AND ($3 IS NULL OR decided_by = $3) \
             AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR created_at >= $5) \
             AND ($6 IS NULL OR created_at < $6) ORDER BY audit_seq LIMIT $7"
        );
        let rows = sqlx::query(&sql)
            .bind(to_i64(f.after_seq, "after")?)
            .bind(f.verification_id.clone())
            .bind(f.decided_by.clone())
            .bind(f.action.clone())
            .bind(f.since.clone())
            .bind(f.until.clone())
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decision_from_row).collect()
    }
}

impl Store {
    /// The body (canonical JSON, parsed) of the newest audit-log leaf whose `kind` is `kind`,
    /// or `None`. Used at start-up to compare the running policy with the last one logged; it
    /// scans the leaves newest first (`kind` is matched inside the stored canonical JSON, then
    /// checked on the parsed body).
    ///
    /// # Errors
    /// Database errors; [`StoreError::Invalid`] for a stored body that is not JSON.
    pub async fn latest_leaf_of_kind(
        &self,
        kind: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        use sqlx::Row as _;
        let needle = format!("%\"kind\":{}%", serde_json::Value::String(kind.to_owned()));
        let rows = sqlx::query(
            "SELECT body FROM audit_leaves WHERE body LIKE $1 ORDER BY leaf_index DESC LIMIT 16",
        )
        .bind(needle)
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let body: String = r.try_get("body")?;
            let v: serde_json::Value = serde_json::from_str(&body)
                .map_err(|e| StoreError::Invalid(format!("audit leaf body: {e}")))?;
            if v.get("kind").and_then(|k| k.as_str()) == Some(kind) {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}
