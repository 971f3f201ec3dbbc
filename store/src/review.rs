//! The review queue: leases of undecided verifications that need a human.

use chrono::{DateTime, Utc};
use sqlx::{Connection as _, Row as _};

use crate::db::{ts_text, Backend};
use crate::error::StoreError;
use crate::Store;

/// Verdict labels that need a human decision.
pub const REVIEW_LABELS: [&str; 3] = ["likely_ai_generated", "tampered", "blocked_signer"];

/// Advisory lock key serialising leases on Postgres (ASCII "HMREVIEW").
const REVIEW_LOCK_KEY: i64 = 0x484d_5245_5649_4557;

/// A lease granted by [`Store::lease_next_review`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewLease {
    /// The verification to decide on.
    pub verification_id: String,
    /// Its verdict label.
    pub verdict: String,
    /// When the lease ends.
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Lease the oldest undecided verification whose verdict is one of
    /// [`REVIEW_LABELS`] and that no other moderator holds an unexpired lease on, to
    /// `moderator` until `now + ttl`. `None` when the queue is empty. Leases are taken under
    /// a lock (`pg_advisory_xact_lock` / `BEGIN IMMEDIATE`), so two moderators never hold
    /// the same item.
    ///
    /// # Errors
    /// Database errors.
    pub async fn lease_next_review(
        &self,
        moderator: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<ReviewLease>, StoreError> {
        let label_sql = match self.backend() {
            Backend::Postgres => "(v.report::json -> 'verdict' ->> 'label')",
            Backend::Sqlite => "json_extract(v.report, '$.verdict.label')",
        };
        let sql = format!(
            "SELECT v.id AS id, {label_sql} AS label FROM verifications v \
             WHERE {label_sql} IN ('likely_ai_generated', 'tampered', 'blocked_signer') \
             AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.verification_id = v.id) \
             AND NOT EXISTS (SELECT 1 FROM review_leases l WHERE l.verification_id = v.id \
                             AND l.expires_at > $1 AND l.moderator <> $2) \
             ORDER BY v.created_at, v.id LIMIT 1"
        );
        let mut conn = self.pool.acquire().await?;
        let mut tx = match self.backend() {
            Backend::Postgres => {
                let mut tx = conn.begin().await?;
                sqlx::query(&format!(
                    "SELECT pg_advisory_xact_lock({REVIEW_LOCK_KEY})::text AS locked"
                ))
                .execute(&mut *tx)
                .await?;
                tx
            }
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        };
        let row = sqlx::query(&sql)
            .bind(ts_text(now))
            .bind(moderator)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let verdict: String = row.try_get("label")?;
        let expires_at = now + ttl;
        sqlx::query("DELETE FROM review_leases WHERE verification_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO review_leases (verification_id, moderator, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&id)
        .bind(moderator)
        .bind(ts_text(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(ReviewLease {
            verification_id: id,
            verdict,
            expires_at,
        }))
    }
}
