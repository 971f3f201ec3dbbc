//! The audit log's service side: its signing key (a file outside the database), and the
//! reads behind `GET /v1/audit/*`.

use std::path::PathBuf;

use anyhow::Context as _;
use hallmark_audit::NoteSigner;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::settings::Settings;
use crate::state::AppState;

/// Where the log key lives: `audit.key_path`, or `<data_dir>/audit-log.key`.
pub fn log_key_path(settings: &Settings) -> PathBuf {
    if settings.audit.key_path.trim().is_empty() {
        settings.storage.data_dir.join("audit-log.key")
    } else {
        PathBuf::from(settings.audit.key_path.trim())
    }
}

/// Loads the note signer key, generating it (mode 0600) on first use. A configured
/// `audit.origin` must equal the key's name.
///
/// # Errors
/// Unreadable or malformed key file, a name that differs from `audit.origin`, or a
/// failure writing a new key.
pub fn load_log_key(settings: &Settings) -> anyhow::Result<NoteSigner> {
    let path = log_key_path(settings);
    let origin = settings.audit.origin.trim();
    if !path.exists() {
        let name = if origin.is_empty() {
            use ring::rand::SecureRandom as _;
            let mut b = [0u8; 4];
            ring::rand::SystemRandom::new()
                .fill(&mut b)
                .map_err(|_| anyhow::anyhow!("system RNG unavailable"))?;
            format!("hallmark.local/audit-{}", hex::encode(b))
        } else {
            origin.to_owned()
        };
        let signer = NoteSigner::generate(&name).context("audit.origin")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if crate::tools::create_private(&path, signer.to_skey().as_bytes())? {
            tracing::warn!(path = %path.display(), origin = %name, "generated the audit log key; back it up and publish `hallmark audit public-key`");
        }
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let signer = NoteSigner::from_skey(&text)
        .with_context(|| format!("{} is not a note signer key", path.display()))?;
    if !origin.is_empty() && origin != signer.name() {
        anyhow::bail!(
            "audit.origin is {origin:?} but the key in {} is named {:?}",
            path.display(),
            signer.name()
        );
    }
    Ok(signer)
}

fn u64_param(name: &str, v: Option<&str>) -> Result<u64, ApiError> {
    let v =
        v.ok_or_else(|| ApiError::InvalidRequest(format!("query parameter {name} is required")))?;
    let ok = !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit());
    let n = if ok { v.parse::<u64>().ok() } else { None };
    match n {
        Some(n) if n <= i64::MAX as u64 => Ok(n),
        _ => Err(ApiError::InvalidRequest(format!(
            "{name} must be a non-negative integer at most {}",
            i64::MAX
        ))),
    }
}

/// Query of `GET /v1/audit/proof/inclusion` (strings, so that every malformed value is a
/// 400 with our message).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// 0-based leaf index (required).
    #[param(value_type = u64, required = true)]
    index: Option<String>,
    /// Tree size of the proof: `index < tree_size <=` the latest checkpoint (required).
    #[param(value_type = u64, required = true)]
    tree_size: Option<String>,
}

/// Query of `GET /v1/audit/proof/consistency`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// Older tree size, `0 < old <= new` (required).
    #[param(value_type = u64, required = true)]
    old: Option<String>,
    /// Newer tree size, at most the latest checkpoint's (required).
    #[param(value_type = u64, required = true)]
    new: Option<String>,
}

/// `{index, tree_size, leaf_hash, inclusion_proof: [hex], checkpoint}` where the checkpoint
/// is the stored one of that size when one was signed.
///
/// # Errors
/// `InvalidRequest` for malformed numbers, `OutOfRange` unless
/// `index < tree_size <= latest checkpoint`.
pub async fn inclusion(state: &AppState, q: &InclusionQuery) -> Result<Value, ApiError> {
    let index = u64_param("index", q.index.as_deref())?;
    let size = u64_param("tree_size", q.tree_size.as_deref())?;
    let proof = state.audit.inclusion_proof(index, size).await?;
    let leaf = state.audit.list_entries(index, 1).await?;
    let cp = state.audit.checkpoint_at(size).await?;
    Ok(json!({
        "index": index,
        "tree_size": size,
        "leaf_hash": leaf.first().and_then(|l| l.leaf_hash.clone()),
        "inclusion_proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        "checkpoint": cp.map(|c| c.note),
    }))
}

/// `{old, new, consistency_proof: [hex]}`.
///
/// # Errors
/// `InvalidRequest` for malformed numbers, `OutOfRange` unless
/// `0 < old <= new <= latest checkpoint`.
pub async fn consistency(state: &AppState, q: &ConsistencyQuery) -> Result<Value, ApiError> {
    let old = u64_param("old", q.old.as_deref())?;
    let new = u64_param("new", q.new.as_deref())?;
    let proof = state.audit.consistency_proof(old, new).await?;
    Ok(json!({
        "old": old,
        "new": new,
        "consistency_proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    }))
}

/// Query of `GET /v1/audit/entries`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EntriesQuery {
    /// Entries with `seq > after` (default 0).
    #[param(value_type = Option<u64>)]
    after: Option<String>,
    /// Page size, 1–1000.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

/// A page of leaves with `seq > after` (`{entries, next_after}`).
///
/// # Errors
/// `InvalidRequest` for a malformed `after` or a `limit` outside 1–1000.
pub async fn entries(state: &AppState, q: &EntriesQuery) -> Result<Value, ApiError> {
    let after = match q.after.as_deref() {
        None => 0,
        v => u64_param("after", v)?,
    };
    let limit = match q.limit.as_deref() {
        None => 100,
        v => u64_param("limit", v)?,
    };
    if limit == 0 || limit > 1000 {
        return Err(ApiError::InvalidRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let limit = limit as u32;
    let entries = state.audit.list_entries(after, limit).await?;
    let next = if entries.len() == limit as usize {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(json!({ "entries": entries, "next_after": next }))
}
