//! Moderation decisions: recorded with who decided, each appended to the audit log.

use hallmark_store::{IdempotencyKey, NewDecision};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// What a moderator decided.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    #[schema(value_type = crate::openapi::schemas::Receipt)]
    pub receipt: hallmark_audit::Receipt,
    /// The same receipt in the C2SP tlog-proof text shape.
    pub tlog_proof: String,
}

/// Body of `POST /v1/decisions/batch`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBatchRequest {
    /// 1–[`MAX_BATCH_DECISIONS`] decisions, recorded together (all or none).
    #[schema(min_items = 1, max_items = 100)]
    pub decisions: Vec<DecisionRequest>,
}

/// Most decisions in one `POST /v1/decisions/batch`.
pub const MAX_BATCH_DECISIONS: usize = 100;

/// What one request recorded: a response per decision, in request order.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The recorded decisions with their receipts.
    pub decisions: Vec<DecisionResponse>,
    /// `true` when the `Idempotency-Key` was used before for the same request: nothing new
    /// was recorded, these are the original decisions and receipts.
    pub replayed: bool,
}

/// Checks one decision and turns it into what the store records.
fn admit(req: &DecisionRequest, actor: &str) -> Result<NewDecision, ApiError> {
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
    Ok(NewDecision {
        verification_id: super::parse_verification_id(&req.verification_id)?,
        action: req.action.as_str().into(),
        policy: req.policy.clone(),
        reason: req.reason.clone(),
        decided_by: actor.into(),
    })
}

/// Records `req` by `actor` and appends it to the audit log in one transaction; returns once
/// the decision is in a signed checkpoint, with its receipt. With `idempotency_key`, a retry
/// of the same request returns the original decision and receipt and records nothing.
///
/// # Errors
/// `InvalidRequest` for an empty policy, over-long fields or control characters (a reason may
/// hold newlines and tabs) or a malformed key, `NotFound` for an unknown verification,
/// `IdempotencyKeyReused` for a key used before for another request.
pub async fn decide(
    state: &AppState,
    req: DecisionRequest,
    actor: &str,
    idempotency_key: Option<String>,
) -> Result<Decided, ApiError> {
    let d = admit(&req, actor)?;
    record(state, vec![d], "decision", actor, idempotency_key).await
}

/// Records 1–[`MAX_BATCH_DECISIONS`] decisions by `actor` together: all or none, one receipt
/// each (consecutive leaves under one signed checkpoint). Idempotency as [`decide`], for the
/// whole batch.
///
/// # Errors
/// As [`decide`]; an error in one decision names its index and records nothing.
pub async fn decide_batch(
    state: &AppState,
    req: DecisionBatchRequest,
    actor: &str,
    idempotency_key: Option<String>,
) -> Result<Decided, ApiError> {
    if req.decisions.is_empty() || req.decisions.len() > MAX_BATCH_DECISIONS {
        return Err(ApiError::InvalidRequest(format!(
            "decisions must hold 1 to {MAX_BATCH_DECISIONS} entries, got {}",
            req.decisions.len()
        )));
    }
    let ds = req
        .decisions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            admit(r, actor).map_err(|e| match e {
                ApiError::InvalidRequest(m) => {
                    ApiError::InvalidRequest(format!("decisions[{i}]: {m}"))
                }
                other => other,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    record(state, ds, "batch", actor, idempotency_key).await
}

/// Fingerprint of a request for idempotency: hex SHA-256 of the canonical JSON of the route
/// and the normalised decisions (so a retry that re-encodes the same body matches).
fn fingerprint(route: &str, ds: &[NewDecision]) -> String {
    let decisions: Vec<serde_json::Value> = ds
        .iter()
        .map(|d| {
            serde_json::json!({
                "verification_id": d.verification_id, "action": d.action,
                "policy": d.policy, "reason": d.reason,
            })
        })
        .collect();
    let canonical = hallmark_audit::canonical_json_string(
        &serde_json::json!({"route": route, "decisions": decisions}),
    );
    super::sha256_hex(canonical.as_bytes())
}

async fn record(
    state: &AppState,
    ds: Vec<NewDecision>,
    route: &str,
    actor: &str,
    idempotency_key: Option<String>,
) -> Result<Decided, ApiError> {
    let idem = match idempotency_key {
        Some(key) => {
            if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x20..0x7f).contains(&b))
            {
                return Err(ApiError::InvalidRequest(
                    "Idempotency-Key must be 1 to 255 printable ASCII characters".into(),
                ));
            }
            Some(IdempotencyKey {
                scope: actor.into(),
                key,
                fingerprint: fingerprint(route, &ds),
            })
        }
        None => None,
    };
    let out = state
        .audit
        .record_decisions(&ds, idem)
        .await
        .map_err(|e| match e {
            hallmark_store::StoreError::NotFound(_) => ApiError::NotFound("verification"),
            other => ApiError::from(other),
        })?;
    let decisions = out
        .decisions
        .into_iter()
        .map(|(decision, entry)| {
            let receipt = entry.receipt();
            DecisionResponse {
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
            }
        })
        .collect();
    Ok(Decided {
        decisions,
        replayed: out.replayed,
    })
}

/// Query of `GET /v1/decisions` (strings, so that every malformed value is a 400 with our
/// message).
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DecisionsQuery {
    /// Only decisions on this verification.
    verification_id: Option<String>,
    /// Only decisions by this API key id.
    decided_by: Option<String>,
    /// Only this action.
    action: Option<DecisionAction>,
    /// RFC 3339 lower bound (inclusive).
    since: Option<String>,
    /// RFC 3339 upper bound (exclusive).
    until: Option<String>,
    /// The previous page's `next_after` (an `audit_seq`).
    after: Option<u64>,
    /// Page size, 1–1000 (default 100).
    limit: Option<u32>,
}

pub(super) fn rfc3339_param(name: &str, v: Option<&String>) -> Result<Option<String>, ApiError> {
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
