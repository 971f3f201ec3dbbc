//! `GET /v1/verifications`: stored verifications by verdict, detection band, media type,
//! SHA-256, asset, time range and decision state, newest first, with cursor paging.

use base64::Engine as _;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// Verdict labels a report can carry (see [`crate::report::Verdict`]).
pub const VERDICT_LABELS: [&str; 7] = [
    "ai_generated",
    "likely_ai_generated",
    "tampered",
    "blocked_signer",
    "provenance_valid",
    "watermark_mismatch",
    "no_evidence",
];

/// Detection bands (`hallmark_detectors::Band`).
pub const BANDS: [&str; 3] = ["likely_synthetic", "inconclusive", "no_signal"];

/// Query of `GET /v1/verifications` (strings, so that every malformed value is a 400 with our
/// message). `verdict` and `band` take comma-separated lists.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerificationsQuery {
    /// Verdict labels, comma-separated.
    verdict: Option<String>,
    /// Detection bands, comma-separated.
    band: Option<String>,
    /// Media type, e.g. `image/png`.
    media_type: Option<String>,
    /// Hex SHA-256 of the file.
    sha256: Option<String>,
    /// Asset id named by a watermark or manifest.
    asset_id: Option<String>,
    /// RFC 3339 lower bound.
    since: Option<String>,
    /// RFC 3339 upper bound.
    until: Option<String>,
    /// `true` or `false`: with or without a recorded decision.
    #[param(value_type = Option<bool>)]
    decided: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<u32>,
}

fn one_of(name: &str, value: Option<&String>, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let Some(v) = value else {
        return Ok(Vec::new());
    };
    v.split(',')
        .map(str::trim)
        .map(|x| {
            if allowed.contains(&x) {
                Ok(x.to_owned())
            } else {
                let shown: String = x.chars().take(40).collect();
                Err(ApiError::InvalidRequest(format!(
                    "{name} '{shown}' is not one of {}",
                    allowed.join(", ")
                )))
            }
        })
        .collect()
}

/// The opaque paging cursor: base64url of `created_at` and `id` of the last row returned.
fn encode_cursor(created_at: &str, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created_at} {id}"))
}

fn decode_cursor(c: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::InvalidRequest("cursor is malformed (use next_cursor as given)".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (at, id) = text.split_once(' ').ok_or_else(bad)?;
    let at = chrono::DateTime::parse_from_rfc3339(at).map_err(|_| bad())?;
    let id = super::parse_verification_id(id).map_err(|_| bad())?;
    Ok((super::rfc3339(at.with_timezone(&chrono::Utc)), id))
}

fn filter(q: &VerificationsQuery) -> Result<hallmark_store::VerificationFilter, ApiError> {
    let sha256 = match &q.sha256 {
        Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(s.to_ascii_lowercase())
        }
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "sha256 must be 64 hex characters".into(),
            ))
        }
        None => None,
    };
    let media_type = match &q.media_type {
        Some(m) if m.is_empty() || m.len() > 100 || !m.contains('/') => {
            return Err(ApiError::InvalidRequest(
                "media_type must be a MIME type such as image/jpeg".into(),
            ))
        }
        m => m.as_ref().map(|m| m.to_ascii_lowercase()),
    };
    let decided = match q.decided.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "decided must be true or false".into(),
            ))
        }
    };
    Ok(hallmark_store::VerificationFilter {
        verdicts: one_of("verdict", q.verdict.as_ref(), &VERDICT_LABELS)?,
        bands: one_of("band", q.band.as_ref(), &BANDS)?,
        media_type,
        sha256,
        asset_id: q
            .asset_id
            .as_deref()
            .map(super::parse_verification_id)
            .transpose()
            .map_err(|_| ApiError::InvalidRequest("asset_id must be a UUID".into()))?,
        since: super::decide::rfc3339_param("since", q.since.as_ref())?,
        until: super::decide::rfc3339_param("until", q.until.as_ref())?,
        decided,
        before: q.cursor.as_deref().map(decode_cursor).transpose()?,
    })
}

/// `GET /v1/verifications`: `{verifications: [{id, created_at, sha256, media_type, asset_id,
/// requested_by, verdict, band, decisions}], next_cursor}`, newest first; `next_cursor` is
/// `null` on the last page. Filters: `verdict` and `band` (comma-separated lists),
/// `media_type`, `sha256`, `asset_id`, `since` / `until` (RFC 3339, `since <= created_at <
/// until`), `decided` (`true`/`false`; `decided=false&verdict=…` is the review backlog),
/// `limit` 1–1000 (default 100), `cursor`.
///
/// # Errors
/// `InvalidRequest` for an unknown verdict or band, a malformed hash, id, time or cursor, or a
/// `limit` outside 1–1000.
pub async fn list_verifications(
    state: &AppState,
    q: &VerificationsQuery,
) -> Result<serde_json::Value, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > hallmark_store::MAX_VERIFICATIONS_PAGE {
        return Err(ApiError::InvalidRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let rows = state.store.list_verifications(&filter(q)?, limit).await?;
    let next = if rows.len() == limit as usize {
        rows.last()
            .map(|v| encode_cursor(&super::rfc3339(v.created_at), &v.id))
    } else {
        None
    };
    let items: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|v| {
            serde_json::json!({
                "id": v.id, "created_at": super::rfc3339(v.created_at), "sha256": v.sha256,
                "media_type": v.media_type, "asset_id": v.asset_id,
                "requested_by": v.requested_by, "verdict": v.verdict, "band": v.band,
                "decisions": v.decisions,
            })
        })
        .collect();
    Ok(serde_json::json!({ "verifications": items, "next_cursor": next }))
}
