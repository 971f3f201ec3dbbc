//! Listing verifications (the moderation workflow's read side): filters and keyset paging.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::db::{parse_ts, to_u64};
use crate::error::StoreError;
use crate::Store;

/// Filter of [`Store::list_verifications`]; empty / `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct VerificationFilter {
    /// Verdict label is one of these (`tampered`, `likely_ai_generated`, …).
    pub verdicts: Vec<String>,
    /// Detection band is one of these (`likely_synthetic`, `inconclusive`, `no_signal`).
    pub bands: Vec<String>,
    /// Sniffed MIME type.
    pub media_type: Option<String>,
    /// SHA-256 of the uploaded bytes (64 lowercase hex).
    pub sha256: Option<String>,
    /// Asset recovered through the watermark.
    pub asset_id: Option<String>,
    /// `created_at >= since` (RFC 3339 text as stored).
    pub since: Option<String>,
    /// `created_at < until`.
    pub until: Option<String>,
    /// `Some(true)`: with at least one decision; `Some(false)`: undecided.
    pub decided: Option<bool>,
    /// Keyset cursor: only rows ordered after `(created_at, id)` (newest first).
    pub before: Option<(String, String)>,
}

/// One row of [`Store::list_verifications`] (the report itself is served by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationSummary {
    /// Verification id.
    pub id: String,
    /// When it was verified.
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the uploaded bytes.
    pub sha256: String,
    /// Sniffed MIME type.
    pub media_type: String,
    /// Asset recovered through the watermark, if any.
    pub asset_id: Option<String>,
    /// API key id that asked.
    pub requested_by: String,
    /// Verdict label (`None` for reports without one).
    pub verdict: Option<String>,
    /// Detection band (`None` when detection did not run).
    pub band: Option<String>,
    /// Number of moderation decisions recorded about it.
    pub decisions: u64,
}

/// Largest page of [`Store::list_verifications`].
pub const MAX_VERIFICATIONS_PAGE: u32 = 1000;

impl Store {
    /// Verifications matching `f`, newest first (`created_at`, then `id`, descending), at
    /// most `limit` (1–[`MAX_VERIFICATIONS_PAGE`]). Page with `before` = the last row's
    /// `(created_at, id)`.
    ///
    /// # Errors
    /// Database errors; corrupt stored timestamps.
    pub async fn list_verifications(
        &self,
        f: &VerificationFilter,
        limit: u32,
    ) -> Result<Vec<VerificationSummary>, StoreError> {
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<String> = Vec::new();
        let param = |v: &str, args: &mut Vec<String>| {
            args.push(v.to_owned());
            format!("${}", args.len())
        };
        for (col, values) in [("verdict", &f.verdicts), ("band", &f.bands)] {
            if !values.is_empty() {
                let ps: Vec<String> = values.iter().map(|v| param(v, &mut args)).collect();
                conds.push(format!("v.{col} IN ({})", ps.join(", ")));
            }
        }
        for (cond, value) in [
            ("v.media_type = ", &f.media_type),
            ("v.sha256 = ", &f.sha256),
            ("v.asset_id = ", &f.asset_id),
            ("v.created_at >= ", &f.since),
            ("v.created_at < ", &f.until),
        ] {
            if let Some(x) = value {
                conds.push(format!("{cond}{}", param(x, &mut args)));
            }
        }
        if let Some((at, id)) = &f.before {
            let (a, b, c) = (
                param(at, &mut args),
                param(at, &mut args),
                param(id, &mut args),
            );
            conds.push(format!(
                "(v.created_at < {a} OR (v.created_at = {b} AND v.id < {c}))"
            ));
        }
        let decided = "EXISTS (SELECT 1 FROM decisions d WHERE d.verification_id = v.id)";
        match f.decided {
            Some(true) => conds.push(decided.into()),
            Some(false) => conds.push(format!("NOT {decided}")),
            None => {}
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT v.id, v.created_at, v.sha256, v.media_type, v.asset_id, v.requested_by, \
             v.verdict, v.band, \
             (SELECT COUNT(*) FROM decisions d WHERE d.verification_id = v.id) AS decisions \
             FROM verifications v {filter} ORDER BY v.created_at DESC, v.id DESC LIMIT {}",
            limit.clamp(1, MAX_VERIFICATIONS_PAGE)
        );
        let mut q = sqlx::query(&sql);
        for a in args {
            q = q.bind(a);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(VerificationSummary {
                    id: r.try_get("id")?,
                    created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
                    sha256: r.try_get("sha256")?,
                    media_type: r.try_get("media_type")?,
                    asset_id: r.try_get("asset_id")?,
                    requested_by: r.try_get("requested_by")?,
                    verdict: r.try_get("verdict")?,
                    band: r.try_get("band")?,
                    decisions: to_u64(r.try_get("decisions")?, "decisions")?,
                })
            })
            .collect()
    }
}
