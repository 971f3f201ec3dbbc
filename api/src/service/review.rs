//! The review queue: lease the oldest undecided verification that needs a human.

use crate::error::ApiError;
use crate::state::AppState;

/// A leased review item.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The verification to review.
    pub verification_id: String,
    /// Its verdict label.
    pub verdict: String,
    /// When the lease lapses and another moderator may take the item.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Leases the oldest undecided verification whose verdict needs review
/// (`likely_ai_generated`, `tampered`, `blocked_signer`) to `key_id` for `lease_seconds`
/// (1–3600); a second call by the same key returns the same lease. `None` when the queue is
/// empty.
///
/// # Errors
/// `InvalidRequest` for `lease_seconds` outside 1–3600; store failures.
pub async fn lease_next(
    state: &AppState,
    key_id: &str,
    lease_seconds: u32,
) -> Result<Option<Lease>, ApiError> {
    if lease_seconds == 0 || lease_seconds > 3600 {
        return Err(ApiError::InvalidRequest(
            "lease_seconds must be between 1 and 3600".into(),
        ));
    }
    let lease = state
        .store
        .lease_next_review(
            key_id,
            hallmark_store::now(),
            chrono::Duration::seconds(i64::from(lease_seconds)),
        )
        .await?;
    Ok(lease.map(|l| Lease {
        verification_id: l.verification_id,
        verdict: l.verdict,
        expires_at: l.expires_at,
    }))
}
