//! Moderation decisions: recorded with who decided, each appended to the audit log.

use hallmark_store::NewDecision;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// What a moderator decided.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DecisionAction {
    /// Leave the content up, unlabelled.
    Allow,
    /// Leave it up with an AI-generated / provenance label.
    Label,
    /// Limit its reach.
    Restrict,
    /// Take it down.
    Remove,
    /// Send it to a senior reviewer.
    Escalate,
}

impl DecisionAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Label => "label",
            Self::Restrict => "restrict",
            Self::Remove => "remove",
            Self::Escalate => "escalate",
        }
    }
}

/// Body of `POST /v1/decisions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// The verification the decision is about.
    pub verification_id: String,
    /// The action taken.
    pub action: DecisionAction,
    /// Policy invoked (e.g. "synthetic-media-v2").
    pub policy: String,
    /// Free-text reason.
    #[serde(default)]
    pub reason: String,
}

/// A recorded decision and its audit-log position.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionResponse {
    /// Decision id.
    pub id: String,
    /// The verification decided on.
    pub verification_id: String,
    /// Action.
    pub action: String,
    /// Policy.
    pub policy: String,
    /// Reason.
    pub reason: String,
    /// API key id of the moderator.
    pub decided_by: String,
    /// RFC 3339 time.
    pub created_at: String,
    /// Sequence number of the audit entry (its leaf index + 1).
    pub audit_seq: u64,
    /// Leaf hash of the audit entry (hex `SHA-256(0x00 ‖ entry)`).
    pub audit_entry_hash: String,
    /// Proof that the decision is in the log: entry, leaf index and hash, inclusion
    /// proof and the signed checkpoint (verify offline with `hallmark audit
    /// verify-receipt`).
    pub receipt: hallmark_audit::Receipt,
    /// The same receipt in the C2SP tlog-proof text shape.
    pub tlog_proof: String,
}

/// Records `req` by `actor` and appends it to the audit log in one transaction; returns once
/// the decision is in a signed checkpoint, with its receipt.
///
/// # Errors
/// `InvalidRequest` for an empty policy, over-long fields or control characters (a reason may
/// hold newlines and tabs), `NotFound` for an unknown
/// verification.
pub async fn decide(
    state: &AppState,
    req: DecisionRequest,
    actor: &str,
) -> Result<DecisionResponse, ApiError> {
    if req.policy.trim().is_empty() {
        return Err(ApiError::InvalidRequest("policy must not be empty".into()));
    }
    if req.policy.len() > 200 || req.reason.len() > 4000 || req.verification_id.len() > 64 {
        return Err(ApiError::InvalidRequest(
            "policy (≤ 200 bytes), reason (≤ 4000 bytes) or verification_id too long".into(),
        ));
    }
    // The audit log is permanent and read by people and tools: no control characters (a
    // reason may span lines and use tabs).
    if req.policy.chars().any(char::is_control) {
        return Err(ApiError::InvalidRequest(
            "policy must not contain control characters".into(),
        ));
    }
    if req
        .reason
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::InvalidRequest(
            "reason must not contain control characters other than newline and tab".into(),
        ));
    }
    let verification_id = super::parse_verification_id(&req.verification_id)?;
    let (decision, entry) = state
        .audit
        .record_decision(&NewDecision {
            verification_id,
            action: req.action.as_str().into(),
            policy: req.policy.clone(),
            reason: req.reason.clone(),
            decided_by: actor.into(),
        })
        .await
        .map_err(|e| match e {
            hallmark_store::StoreError::NotFound(_) => ApiError::NotFound("verification"),
            other => ApiError::from(other),
        })?;
    let receipt = entry.receipt();
    Ok(DecisionResponse {
        id: decision.id,
        verification_id: decision.verification_id,
        action: decision.action,
        policy: decision.policy,
        reason: decision.reason,
        decided_by: decision.decided_by,
        created_at: super::rfc3339(decision.created_at),
        audit_seq: entry.leaf_index + 1,
        audit_entry_hash: hex::encode(entry.leaf_hash),
        tlog_proof: receipt.tlog_proof(),
        receipt,
    })
}

/// Query of `GET /v1/decisions` (strings, so that every malformed value is a 400 with our
/// message).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionsQuery {
    verification_id: Option<String>,
    decided_by: Option<String>,
    action: Option<DecisionAction>,
    since: Option<String>,
    until: Option<String>,
    after: Option<u64>,
    limit: Option<u32>,
}

fn rfc3339_param(name: &str, v: Option<&String>) -> Result<Option<String>, ApiError> {
    v.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| super::rfc3339(t.with_timezone(&chrono::Utc)))
            .map_err(|_| ApiError::InvalidRequest(format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

/// `GET /v1/decisions`: decisions by verification, actor, action and time range, in log order,
/// paged by `after` (the last `audit_seq` seen). Answers `{decisions, next_after}`.
///
/// # Errors
/// `InvalidRequest` for a malformed id, time, cursor or a `limit` outside 1–1000.
pub async fn list_decisions(
    state: &AppState,
    q: &DecisionsQuery,
) -> Result<serde_json::Value, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::InvalidRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let after = q.after.unwrap_or(0);
    if after > i64::MAX as u64 {
        return Err(ApiError::InvalidRequest(format!(
            "after must be at most {}",
            i64::MAX
        )));
    }
    let filter = hallmark_store::DecisionFilter {
        verification_id: q
            .verification_id
            .as_deref()
            .map(super::parse_verification_id)
            .transpose()?,
        decided_by: q.decided_by.clone(),
        action: q.action.map(|a| a.as_str().to_owned()),
        since: rfc3339_param("since", q.since.as_ref())?,
        until: rfc3339_param("until", q.until.as_ref())?,
        after_seq: after,
    };
    let rows = state.store.list_decisions(&filter, limit).await?;
    let next = if rows.len() == limit as usize {
        rows.last().map(|d| d.audit_seq)
    } else {
        None
    };
    let decisions: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id, "verification_id": d.verification_id, "action": d.action,
                "policy": d.policy, "reason": d.reason, "decided_by": d.decided_by,
                "created_at": super::rfc3339(d.created_at), "audit_seq": d.audit_seq,
            })
        })
        .collect();
    Ok(serde_json::json!({ "decisions": decisions, "next_after": next }))
}
