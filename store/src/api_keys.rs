//! API keys: creation, lookup by secret digest, listing, revocation, rotation, expiry and
//! last use. The store never sees a secret, only its digest.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::{check_non_empty, now, parse_opt_ts, parse_ts, ts_text};
use crate::error::StoreError;
use crate::models::{ApiKeyRecord, NewApiKey};
use crate::Store;

const API_KEY_COLS: &str =
    "id, name, key_hash, scopes, created_at, revoked_at, expires_at, last_used_at";

fn check_new(key: &NewApiKey) -> Result<(), StoreError> {
    check_non_empty("id", &key.id)?;
    check_non_empty("key_hash", &key.key_hash)?;
    for s in &key.scopes {
        if s.is_empty() || s.contains(',') || s.chars().any(char::is_whitespace) {
            return Err(StoreError::Invalid(format!(
                "scope {s:?} must be non-empty without commas or whitespace"
            )));
        }
    }
    Ok(())
}

async fn insert(conn: &mut AnyConnection, key: &NewApiKey) -> Result<ApiKeyRecord, StoreError> {
    check_new(key)?;
    let created_at = now();
    sqlx::query(
        "INSERT INTO api_keys (id, name, key_hash, scopes, created_at, revoked_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, NULL, $6)",
    )
    .bind(&key.id)
    .bind(&key.name)
    .bind(&key.key_hash)
    .bind(key.scopes.join(","))
    .bind(ts_text(created_at))
    .bind(key.expires_at.map(ts_text))
    .execute(&mut *conn)
    .await?;
    Ok(ApiKeyRecord {
        id: key.id.clone(),
        name: key.name.clone(),
        key_hash: key.key_hash.clone(),
        scopes: key.scopes.clone(),
        created_at,
        revoked_at: None,
        expires_at: key.expires_at.map(truncate),
        last_used_at: None,
    })
}

fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
    let sql = format!("SELECT {API_KEY_COLS} FROM api_keys WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| api_key_from_row(&r)).transpose()
}

async fn revoke(conn: &mut AnyConnection, id: &str) -> Result<ApiKeyRecord, StoreError> {
    sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
        .bind(ts_text(now()))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("api key {id}")))
}

impl Store {
    /// Insert an API key (`created_at` = now). Duplicate id or key hash →
    /// [`StoreError::Conflict`].
    pub async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert(&mut conn, key).await
    }

    /// The key with this hash if it authenticates now (not revoked, not expired).
    pub async fn find_api_key_by_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {API_KEY_COLS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)"
        );
        let row = sqlx::query(&sql)
            .bind(key_hash)
            .bind(ts_text(now()))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| api_key_from_row(&r)).transpose()
    }

    /// Any key (revoked or not) by id.
    pub async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        get(&mut conn, id).await
    }

    /// Every key, oldest first; revoked ones only with `include_revoked`.
    pub async fn list_api_keys(
        &self,
        include_revoked: bool,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let filter = if include_revoked {
            ""
        } else {
            "WHERE revoked_at IS NULL"
        };
        let sql = format!("SELECT {API_KEY_COLS} FROM api_keys {filter} ORDER BY created_at, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(api_key_from_row).collect()
    }

    /// Mark a key revoked (idempotent: keeps the first revocation time) and return it.
    /// Unknown id → [`StoreError::NotFound`].
    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKeyRecord, StoreError> {
        let mut conn = self.pool.acquire().await?;
        revoke(&mut conn, id).await
    }

    /// Deletes a key outright: only to undo a creation whose audit-log entry could not be
    /// written (the key was never shown to anyone).
    pub async fn delete_api_key(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Rotation in one transaction: inserts `new` and ends `old_id` — revoked now, or, with
    /// `old_expires_at`, expiring then (a grace period for clients to switch). Returns
    /// `(old, new)`. Unknown or already revoked `old_id` → [`StoreError::NotFound`].
    pub async fn rotate_api_key(
        &self,
        old_id: &str,
        new: &NewApiKey,
        old_expires_at: Option<DateTime<Utc>>,
    ) -> Result<(ApiKeyRecord, ApiKeyRecord), StoreError> {
        let mut tx = self.pool.begin().await?;
        let old = get(&mut tx, old_id)
            .await?
            .filter(|k| k.revoked_at.is_none())
            .ok_or_else(|| StoreError::NotFound(format!("api key {old_id}")))?;
        let created = insert(&mut tx, new).await?;
        let old = match old_expires_at {
            Some(at) => {
                let at = old.expires_at.map_or(at, |e| e.min(at));
                sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
                    .bind(ts_text(at))
                    .bind(old_id)
                    .execute(&mut *tx)
                    .await?;
                ApiKeyRecord {
                    expires_at: Some(truncate(at)),
                    ..old
                }
            }
            None => revoke(&mut tx, old_id).await?,
        };
        tx.commit().await?;
        Ok((old, created))
    }

    /// Records that key `id` authenticated at `at` (only moves forward).
    pub async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(ts_text(at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Number of API keys (including revoked ones) — e.g. to decide whether
    /// to bootstrap an admin key.
    pub async fn count_api_keys(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }
}

fn api_key_from_row(r: &AnyRow) -> Result<ApiKeyRecord, StoreError> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiKeyRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        key_hash: r.try_get("key_hash")?,
        scopes: scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
        revoked_at: parse_opt_ts(r.try_get("revoked_at")?)?,
        expires_at: parse_opt_ts(r.try_get("expires_at")?)?,
        last_used_at: parse_opt_ts(r.try_get("last_used_at")?)?,
    })
}
