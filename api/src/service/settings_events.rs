//! The running policy as an audit-log entry: what decides Hallmark's answers (C2PA trust
//! lists, the signing certificate, detector models with their calibration and thresholds,
//! the generator registry) is summarised as SHA-256 digests and logged as a
//! `settings.changed` leaf whenever an instance starts with a policy different from the last
//! one logged. An auditor reading the log then sees when thresholds or trust anchors changed,
//! and an operator cannot change them between two decisions without leaving a leaf.
//! Nothing secret enters the leaf: no key material, no database or cache URLs.

use hallmark_audit::EntryBody;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// Entry kind of a policy change.
pub const KIND: &str = "settings.changed";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn opt_digest(s: &Option<String>) -> Value {
    s.as_deref()
        .map_or(Value::Null, |t| Value::String(sha256_hex(t.as_bytes())))
}

/// The policy summary of a running instance (JSON object; digests are lowercase hex SHA-256).
pub fn policy(state: &AppState) -> Value {
    let t = &state.trust;
    let chain: Vec<u8> = state.identity.chain_der().concat();
    let detectors: Vec<Value> = state
        .detectors
        .as_ref()
        .map(|p| {
            p.models()
                .into_iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "version": m.version,
                        "sha256": m.sha256,
                        "backbone_sha256": m.backbone_sha256,
                        "calibration": m.calibration,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let generators = std::fs::read(&state.settings.generators.registry)
        .ok()
        .filter(|_| state.generators.is_some())
        .map_or(Value::Null, |b| Value::String(sha256_hex(&b)));
    json!({
        "c2pa": {
            "trust_anchors_sha256": opt_digest(&t.trust_anchors_pem),
            "allowed_list_sha256": opt_digest(&t.allowed_list_pem),
            "allowed_ekus_sha256": opt_digest(&t.allowed_ekus),
            "blocked_list_sha256": opt_digest(&t.blocked_list_pem),
        },
        "signing": {
            "certificate_chain_sha256": sha256_hex(&chain),
            "development_identity": state.identity_is_dev,
        },
        "detectors": detectors,
        "generator_registry_sha256": generators,
    })
}

/// Logs the running policy as a `settings.changed` leaf if it differs from the last one
/// logged (or none was). `actor` is who started the instance (e.g. `hallmark serve`).
/// Returns the new entry's `seq` (1-based), or `None` when nothing changed or
/// `audit.settings_events` is off.
///
/// # Errors
/// Database and log failures ([`ApiError`]); the caller decides whether start-up continues.
pub async fn record(state: &AppState, actor: &str) -> Result<Option<u64>, ApiError> {
    if !state.settings.audit.settings_events {
        return Ok(None);
    }
    let policy = policy(state);
    let digest = sha256_hex(&hallmark_audit::canonical_json(&policy));
    let last = state.store.latest_leaf_of_kind(KIND).await?;
    let previous = last
        .as_ref()
        .and_then(|b| b.pointer("/data/digest"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if previous.as_deref() == Some(digest.as_str()) {
        return Ok(None);
    }
    let body = EntryBody::new(
        KIND,
        actor,
        json!({ "digest": digest, "previous_digest": previous, "policy": policy }),
    );
    let a = state.audit.append(body).await?;
    Ok(Some(a.leaf_index + 1))
}
