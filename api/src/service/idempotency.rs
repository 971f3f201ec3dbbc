//! `Idempotency-Key` on `POST /v1/sign` and `POST /v1/generate` (IETF
//! draft-ietf-httpapi-idempotency-key-header), with the semantics of the decision routes: the
//! same key and the same request get the first response back (`Idempotent-Replayed: true`),
//! nothing new is signed or stored; the same key with another request is 422
//! `idempotency_key_reused`; a retry while the first request is still running is 409
//! `idempotency_key_in_use` (draft §2.7). Keys are scoped per API key and route, and kept in
//! the database for [`KEEP_FOR`] (with the signed file, so that the replay is the same file).

use std::time::Duration;

use hallmark_store::{Claim, RequestKey, Store, StoredResponse};
use serde::{Deserialize, Serialize};

use super::sha256_hex;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a completed request's response is kept for replay.
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);

/// A claim older than this belongs to a request that died (a request is bounded by the upload
/// timeout plus the job deadlines, far less); a retry takes it over.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

/// A claimed key: complete it in the transaction that stores the request's rows
/// ([`Claimed::completion`]), or it is released when dropped, so that a retry runs afresh.
#[derive(Debug)]
pub struct Claimed {
    key: RequestKey,
    store: Store,
    done: bool,
}

impl Claimed {
    /// The key, and the response to store with it.
    pub fn completion<'a>(
        &'a self,
        out: &super::SignOutput,
    ) -> Result<(&'a RequestKey, StoredResponse), ApiError> {
        let meta = serde_json::to_string(&Meta {
            asset_id: out.asset_id.clone(),
            manifest_label: out.manifest_label.clone(),
            payload: out.payload.clone(),
        })
        .map_err(ApiError::internal)?;
        Ok((
            &self.key,
            StoredResponse {
                meta,
                body: out.bytes.clone(),
            },
        ))
    }

    /// Marks the claim completed (its rows are committed): nothing to release.
    pub fn completed(mut self) {
        self.done = true;
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (store, key) = (self.store.clone(), self.key.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.release_request_key(&key).await {
                    // The claim goes stale and is taken over after STALE_AFTER.
                    tracing::warn!(error = %e, "could not release an idempotency key");
                }
            });
        }
    }
}

/// What [`begin`] found.
#[derive(Debug)]
pub enum Begun {
    /// Run the request; with a key, complete the claim when storing its rows.
    Fresh(Option<Claimed>),
    /// The first response to this request.
    Replay(super::SignOutput),
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    asset_id: String,
    manifest_label: String,
    payload: String,
}

/// Hex SHA-256 over the route and the request's parts, each length-prefixed.
pub fn fingerprint(route: &str, parts: &[&[u8]]) -> String {
    let mut buf = Vec::new();
    for p in std::iter::once(route.as_bytes()).chain(parts.iter().copied()) {
        buf.extend_from_slice(&(p.len() as u64).to_be_bytes());
        buf.extend_from_slice(p);
    }
    sha256_hex(&buf)
}

/// Claims `idem_key` (if the client sent one) for `caller`'s request to `route` with
/// `fingerprint`, or finds the first response.
///
/// # Errors
/// `IdempotencyKeyReused` (422) for another request under the key, `IdempotencyInProgress`
/// (409) while the first one runs, `InvalidRequest` for an empty or over-long key; database
/// failures.
pub async fn begin(
    state: &AppState,
    caller: &str,
    route: &str,
    idem_key: Option<String>,
    fingerprint: String,
) -> Result<Begun, ApiError> {
    let Some(idem_key) = idem_key else {
        return Ok(Begun::Fresh(None));
    };
    if idem_key.is_empty() || idem_key.len() > 255 {
        return Err(ApiError::InvalidRequest(
            "Idempotency-Key must have 1 to 255 characters".into(),
        ));
    }
    let key = RequestKey {
        api_key_id: caller.to_owned(),
        route: route.to_owned(),
        idem_key,
        fingerprint,
    };
    let now = hallmark_store::now();
    let ago = |d: Duration| now - chrono::Duration::from_std(d).unwrap_or_default();
    match state
        .store
        .claim_request_key(&key, ago(STALE_AFTER), ago(KEEP_FOR))
        .await?
    {
        Claim::Claimed => Ok(Begun::Fresh(Some(Claimed {
            key,
            store: state.store.clone(),
            done: false,
        }))),
        Claim::Replay(r) => Ok(Begun::Replay(replay(r)?)),
        Claim::InProgress => Err(ApiError::IdempotencyInProgress),
        Claim::Conflict => Err(ApiError::IdempotencyKeyReused(format!(
            "Idempotency-Key {:?} was used for a different request",
            key.idem_key
        ))),
    }
}

fn replay(r: StoredResponse) -> Result<super::SignOutput, ApiError> {
    let meta: Meta = serde_json::from_str(&r.meta).map_err(ApiError::internal)?;
    let format = hallmark_media::sniff(&r.body).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("a stored signed file has no known format"))
    })?;
    Ok(super::SignOutput {
        asset_id: meta.asset_id,
        bytes: r.body,
        format,
        manifest_label: meta.manifest_label,
        payload: meta.payload,
        replayed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn fingerprint_separates_parts() {
        assert_ne!(
            fingerprint("/v1/sign", &[b"ab", b"c"]),
            fingerprint("/v1/sign", &[b"a", b"bc"])
        );
        assert_ne!(
            fingerprint("/v1/sign", &[b"x"]),
            fingerprint("/v1/generate", &[b"x"])
        );
        assert_eq!(fingerprint("/r", &[b"x"]), fingerprint("/r", &[b"x"]));
    }
}
