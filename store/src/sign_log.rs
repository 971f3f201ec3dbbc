//! Signed assets and their manifests, written together in one transaction, and the
//! `Idempotency-Key` records of `POST /v1/sign` and `/v1/generate` (IETF
//! draft-ietf-httpapi-idempotency-key-header).
//!
//! A request with a key first [claims](Store::claim_request_key) it (a `pending` row). The
//! asset, its manifest and the claim's completion (`done`, with the response to replay) are
//! written by [`Store::insert_signed`] in one transaction: a crash between them leaves neither
//! an asset without its manifest nor an asset without its idempotency record.

use chrono::{DateTime, Utc};
use sqlx::{Any, Executor, Row};

use crate::db::{check_non_empty, parse_ts, ts_text, Store};
use crate::error::StoreError;
use crate::models::{AssetRecord, ManifestRecord};

/// Identifies one idempotent request: the caller's API key, the route and the client's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// API key id of the caller (keys are scoped per caller).
    pub api_key_id: String,
    /// Route, e.g. `/v1/sign`.
    pub route: String,
    /// The client's `Idempotency-Key` value (1–255 bytes).
    pub idem_key: String,
    /// Hex SHA-256 of the normalised request; the same key with another fingerprint is a
    /// conflict.
    pub fingerprint: String,
}

/// A stored response, replayed to a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// Caller-defined JSON describing the response (headers).
    pub meta: String,
    /// Response body.
    pub body: Vec<u8>,
}

/// Outcome of [`Store::claim_request_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: do the work, then complete it with [`Store::insert_signed`]
    /// (or give it up with [`Store::release_request_key`]).
    Claimed,
    /// The same request completed before: its response.
    Replay(StoredResponse),
    /// The same request is being processed right now (by this or another instance).
    InProgress,
    /// The key was used for a different request.
    Conflict,
}

/// Insert `a` through `e` (the pool or a transaction).
pub(crate) async fn insert_asset_on<'e, E>(e: E, a: &AssetRecord) -> Result<(), StoreError>
where
    E: Executor<'e, Database = Any>,
{
    let sql = format!(
        "INSERT INTO assets ({}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        crate::db::ASSET_COLS
    );
    sqlx::query(&sql)
        .bind(&a.id)
        .bind(ts_text(a.created_at))
        .bind(&a.media_type)
        .bind(a.input_sha256.clone())
        .bind(&a.output_sha256)
        .bind(a.watermark_payload.clone())
        .bind(a.manifest_label.clone())
        .bind(&a.generator)
        .bind(&a.model)
        .bind(&a.model_version)
        .bind(&a.digital_source_type)
        .bind(&a.created_by)
        .bind(a.content_fingerprint.clone())
        .execute(e)
        .await?;
    Ok(())
}

/// Insert `m` through `e` (the pool or a transaction).
pub(crate) async fn insert_manifest_on<'e, E>(e: E, m: &ManifestRecord) -> Result<(), StoreError>
where
    E: Executor<'e, Database = Any>,
{
    check_non_empty("label", &m.label)?;
    let sql = format!(
        "INSERT INTO manifests ({}) VALUES ($1, $2, $3, $4, $5)",
        crate::db::MANIFEST_COLS
    );
    sqlx::query(&sql)
        .bind(&m.label)
        .bind(&m.asset_id)
        .bind(&m.format)
        .bind(m.store_bytes.clone())
        .bind(ts_text(m.created_at))
        .execute(e)
        .await?;
    Ok(())
}

impl Store {
    /// Inserts a signed asset and its manifest in one transaction and, with `done`, marks the
    /// claimed idempotency key complete with the response to replay. Either everything is
    /// written or nothing is.
    ///
    /// # Errors
    /// As [`Store::insert_asset`] and [`Store::insert_manifest`]; [`StoreError::Conflict`]
    /// when `done` names a key this request does not hold (no pending row).
    pub async fn insert_signed(
        &self,
        asset: &AssetRecord,
        manifest: &ManifestRecord,
        done: Option<(&RequestKey, &StoredResponse)>,
    ) -> Result<(), StoreError> {
        crate::db::check_asset(asset)?;
        let mut tx = self.pool.begin().await?;
        insert_asset_on(&mut *tx, asset).await?;
        insert_manifest_on(&mut *tx, manifest).await?;
        if let Some((k, resp)) = done {
            let n = sqlx::query(
                "UPDATE request_idempotency SET state = 'done', response_meta = $1, \
                 response_body = $2 WHERE api_key_id = $3 AND route = $4 AND idem_key = $5 \
                 AND fingerprint = $6 AND state = 'pending'",
            )
            .bind(&resp.meta)
            .bind(resp.body.clone())
            .bind(&k.api_key_id)
            .bind(&k.route)
            .bind(&k.idem_key)
            .bind(&k.fingerprint)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict(
                    "the idempotency key is no longer held by this request".into(),
                ));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims `key` for a new request, or finds what became of an earlier one. A `pending`
    /// claim created before `stale_before` belongs to a request that died; it is taken over.
    /// Completed records older than `expire_before` are deleted first (the key may then be
    /// used afresh).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty or over-long key; database failures.
    pub async fn claim_request_key(
        &self,
        key: &RequestKey,
        stale_before: DateTime<Utc>,
        expire_before: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        if key.idem_key.is_empty() || key.idem_key.len() > 255 {
            return Err(StoreError::Invalid(
                "an idempotency key has 1 to 255 bytes".into(),
            ));
        }
        check_non_empty("fingerprint", &key.fingerprint)?;
        sqlx::query("DELETE FROM request_idempotency WHERE created_at < $1")
            .bind(ts_text(expire_before))
            .execute(&self.pool)
            .await?;
        let now = crate::db::now();
        let inserted = sqlx::query(
            "INSERT INTO request_idempotency \
             (api_key_id, route, idem_key, fingerprint, state, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT DO NOTHING",
        )
        .bind(&key.api_key_id)
        .bind(&key.route)
        .bind(&key.idem_key)
        .bind(&key.fingerprint)
        .bind(ts_text(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Claim::Claimed);
        }
        let Some(row) = sqlx::query(
            "SELECT fingerprint, state, response_meta, response_body, created_at \
             FROM request_idempotency WHERE api_key_id = $1 AND route = $2 AND idem_key = $3",
        )
        .bind(&key.api_key_id)
        .bind(&key.route)
        .bind(&key.idem_key)
        .fetch_optional(&self.pool)
        .await?
        else {
            // Released between our insert and this read: the caller may retry at once.
            return Ok(Claim::InProgress);
        };
        let fingerprint: String = row.try_get("fingerprint")?;
        if fingerprint != key.fingerprint {
            return Ok(Claim::Conflict);
        }
        let state: String = row.try_get("state")?;
        let created: String = row.try_get("created_at")?;
        if state == "done" {
            let meta: Option<String> = row.try_get("response_meta")?;
            let body: Option<Vec<u8>> = row.try_get("response_body")?;
            return match (meta, body) {
                (Some(meta), Some(body)) => Ok(Claim::Replay(StoredResponse { meta, body })),
                _ => Err(StoreError::Corrupt(
                    "a completed idempotency record has no response".into(),
                )),
            };
        }
        if parse_ts(&created)? < stale_before {
            // Compare-and-set on the old timestamp: of several retries, one takes it over.
            let n = sqlx::query(
                "UPDATE request_idempotency SET created_at = $1 WHERE api_key_id = $2 \
                 AND route = $3 AND idem_key = $4 AND state = 'pending' AND created_at = $5",
            )
            .bind(ts_text(now))
            .bind(&key.api_key_id)
            .bind(&key.route)
            .bind(&key.idem_key)
            .bind(&created)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n == 1 {
                return Ok(Claim::Claimed);
            }
        }
        Ok(Claim::InProgress)
    }

    /// Gives up a claim whose request failed, so that a retry signs anew. Completed records
    /// are never removed.
    ///
    /// # Errors
    /// Database failures.
    pub async fn release_request_key(&self, key: &RequestKey) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM request_idempotency WHERE api_key_id = $1 AND route = $2 \
             AND idem_key = $3 AND fingerprint = $4 AND state = 'pending'",
        )
        .bind(&key.api_key_id)
        .bind(&key.route)
        .bind(&key.idem_key)
        .bind(&key.fingerprint)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
