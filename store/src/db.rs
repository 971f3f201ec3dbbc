//! The relational store: one code path over [`sqlx::AnyPool`].

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hallmark_audit::format_timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

use crate::error::StoreError;
use crate::models::{AssetRecord, DecisionRecord, ManifestRecord, VerificationRecord};

static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// Key of the transaction-scoped Postgres advisory lock that serialises audit
/// appends (ASCII "HALLMARK").
pub const AUDIT_ADVISORY_LOCK_KEY: i64 = 0x4841_4c4c_4d41_524b;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
    /// SQLite (`sqlite://path`, `sqlite::memory:`).
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// Current time truncated to millisecond precision — the precision at which
/// the store persists timestamps, so values round-trip exactly.
pub fn now() -> DateTime<Utc> {
    truncate_millis(Utc::now())
}

/// A fresh UUID v7 (time-ordered) as a lowercase hyphenated string.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn truncate_millis(ts: DateTime<Utc>) -> DateTime<Utc> {
    let ms = ts.timestamp_millis();
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(ts)
}

pub(crate) fn ts_text(ts: DateTime<Utc>) -> String {
    format_timestamp(ts)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

pub(crate) fn parse_opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.as_deref().map(parse_ts).transpose()
}

pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} out of range: {v}")))
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_sha256(field: &str, v: &str) -> Result<(), StoreError> {
    if is_lower_hex(v, 64) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{field} must be 64 lowercase hex characters"
        )))
    }
}

pub(crate) fn check_non_empty(field: &str, v: &str) -> Result<(), StoreError> {
    if v.is_empty() {
        Err(StoreError::Invalid(format!("{field} must not be empty")))
    } else {
        Ok(())
    }
}

/// Checks an asset's id, hashes and payload before it is written.
pub(crate) fn check_asset(a: &AssetRecord) -> Result<(), StoreError> {
    check_non_empty("id", &a.id)?;
    check_sha256("output_sha256", &a.output_sha256)?;
    if let Some(i) = &a.input_sha256 {
        check_sha256("input_sha256", i)?;
    }
    if let Some(p) = &a.watermark_payload {
        if !(is_lower_hex(p, 16) || is_lower_hex(p, 8)) {
            return Err(StoreError::Invalid(
                "watermark_payload must be 16 (image) or 8 (audio) lowercase hex characters".into(),
            ));
        }
    }
    Ok(())
}

/// Parsed database URL.
struct Target {
    backend: Backend,
    url: String,
    sqlite_memory: bool,
    /// The SQLite database file.
    file: Option<std::path::PathBuf>,
}

async fn resolve_url(url: &str) -> Result<Target, StoreError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return Ok(Target {
            backend: Backend::Postgres,
            url: url.to_string(),
            sqlite_memory: false,
            file: None,
        });
    }
    let rest = if let Some(r) = url.strip_prefix("sqlite://") {
        r
    } else if let Some(r) = url.strip_prefix("sqlite:") {
        r
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        return Err(StoreError::UnsupportedUrl(format!(
            "scheme {scheme:?} (expected postgres://, postgresql:// or sqlite://)"
        )));
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(StoreError::UnsupportedUrl(
            "sqlite url without a path".into(),
        ));
    }
    let memory = path == ":memory:" || query.is_some_and(|q| q.contains("mode=memory"));
    if memory {
        return Ok(Target {
            backend: Backend::Sqlite,
            url: "sqlite::memory:".to_string(),
            sqlite_memory: true,
            file: None,
        });
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(StoreError::Io)?;
        }
    }
    let query = match query {
        Some(q) if q.split('&').any(|kv| kv.starts_with("mode=")) => q.to_string(),
        Some(q) if !q.is_empty() => format!("{q}&mode=rwc"),
        _ => "mode=rwc".to_string(),
    };
    Ok(Target {
        backend: Backend::Sqlite,
        url: format!("sqlite://{path}?{query}"),
        sqlite_memory: false,
        file: Some(std::path::PathBuf::from(path)),
    })
}

/// Handle to the relational database. Cheap to clone (shares the pool).
///
/// See the crate documentation for the storage conventions and the
/// concurrency design of the audit chain.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// Start-up lock file of a SQLite database file (see `startup.rs`).
    pub(crate) lock_path: Option<std::path::PathBuf>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

pub(crate) const ASSET_COLS: &str = "id, created_at, media_type, input_sha256, output_sha256, \
     watermark_payload, manifest_label, generator, model, model_version, \
     digital_source_type, created_by, content_fingerprint";
pub(crate) const MANIFEST_COLS: &str = "label, asset_id, format, store_bytes, created_at";
const VERIFICATION_COLS: &str =
    "id, created_at, sha256, media_type, asset_id, requested_by, report";
pub(crate) const DECISION_COLS: &str =
    "id, verification_id, action, policy, reason, decided_by, created_at, audit_seq";

/// Longest wait for a pooled database connection before a request fails
/// with [`StoreError::Unavailable`].
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

impl Store {
    /// Connect and apply the backend's embedded migrations.
    ///
    /// * `postgres://…` / `postgresql://…` → PostgreSQL.
    /// * `sqlite://path/to/file.db` (relative) or `sqlite:///abs/path.db` →
    ///   SQLite; the parent directory and the file are created (`mode=rwc`).
    ///   Every connection enables WAL, foreign keys and a 5 s busy timeout.
    /// * `sqlite::memory:` → a private in-memory SQLite database (single
    ///   connection; for tests and demos).
    ///
    /// Migrations are tracked in `_sqlx_migrations`, so connecting again is a
    /// no-op for already-applied migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_migrated_to(url, i64::MAX).await
    }

    /// [`Store::connect`], applying only the migrations up to `max_version` (to test
    /// a migration against data written by the schema before it).
    #[cfg(any(test, feature = "testing"))]
    pub async fn connect_at_version(url: &str, max_version: i64) -> Result<Store, StoreError> {
        Self::connect_migrated_to(url, max_version).await
    }

    async fn connect_migrated_to(url: &str, max_version: i64) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let target = resolve_url(url).await?;
        // Postgres migrations hold an advisory lock (sqlx); SQLite's (from creating the file and
        // switching it to WAL on) are serialised here, so that instances starting together on
        // a new file don't both apply them.
        let lock_path = target.file.as_deref().map(crate::startup::lock_path);
        let file_lock = match &lock_path {
            Some(p) => Some(crate::startup::lock_file(p.clone()).await?),
            None => None,
        };
        // A short acquire timeout: with the database down a request fails within a second
        // (503 `store_unavailable`) instead of hanging; pooled connections are tested before
        // use, so the pool recovers by itself when the database comes back.
        let mut opts = AnyPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true);
        match target.backend {
            Backend::Postgres => {
                opts = opts.max_connections(10);
            }
            Backend::Sqlite => {
                opts = opts
                    .max_connections(if target.sqlite_memory { 1 } else { 8 })
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; \
                                 PRAGMA foreign_keys = ON; \
                                 PRAGMA busy_timeout = 5000; \
                                 PRAGMA synchronous = NORMAL;",
                            )
                            .await?;
                            Ok(())
                        })
                    });
                if target.sqlite_memory {
                    opts = opts
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
            }
        }
        let pool = opts
            .connect(&target.url)
            .await
            .map_err(StoreError::Database)?;
        let migrator = match target.backend {
            Backend::Postgres => &POSTGRES_MIGRATOR,
            Backend::Sqlite => &SQLITE_MIGRATOR,
        };
        if max_version == i64::MAX {
            migrator.run(&pool).await?;
        } else {
            let partial = Migrator {
                migrations: std::borrow::Cow::Owned(
                    migrator
                        .migrations
                        .iter()
                        .filter(|m| m.version <= max_version)
                        .cloned()
                        .collect(),
                ),
                ..Migrator::DEFAULT
            };
            partial.run(&pool).await?;
        }
        if let Some(f) = file_lock {
            f.unlock().map_err(StoreError::Io)?;
        }
        tracing::debug!(backend = %target.backend, "store connected and migrated");
        Ok(Store {
            pool,
            backend: target.backend,
            lock_path,
        })
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Round-trip to the database (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// [`Store::ping`] bounded by `timeout`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database does not answer in time; see
    /// [`Store::ping`].
    pub async fn ping_within(&self, timeout: Duration) -> Result<(), StoreError> {
        tokio::time::timeout(timeout, self.ping())
            .await
            .unwrap_or(Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)))
    }

    /// Connections the pool holds now and how many of them are idle: `(size, idle)`.
    pub fn pool_usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Close the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Execute arbitrary SQL (possibly several statements) — for tamper tests
    /// only. Available with the `testing` feature.
    #[cfg(any(test, feature = "testing"))]
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        let r = self.pool.execute(sql).await?;
        Ok(r.rows_affected())
    }

    // --------------------------------------------------------------- assets

    /// Insert an asset. Duplicate id or watermark payload →
    /// [`StoreError::Conflict`]. Hashes must be 64 lowercase hex characters,
    /// the payload 16 (image, 64-bit) or 8 (audio, 32-bit). A signed asset and its manifest
    /// are written together by [`Store::insert_signed`].
    pub async fn insert_asset(&self, a: &AssetRecord) -> Result<(), StoreError> {
        check_asset(a)?;
        crate::sign_log::insert_asset_on(&self.pool, a).await
    }

    /// Asset by id.
    pub async fn get_asset(&self, id: &str) -> Result<Option<AssetRecord>, StoreError> {
        let sql = format!("SELECT {ASSET_COLS} FROM assets WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| asset_from_row(&r)).transpose()
    }

    /// Asset by watermark payload (hex: 16 characters for images, 8 for audio; matched
    /// case-insensitively by lower-casing the argument).
    pub async fn find_asset_by_payload(
        &self,
        payload_hex: &str,
    ) -> Result<Option<AssetRecord>, StoreError> {
        let sql = format!("SELECT {ASSET_COLS} FROM assets WHERE watermark_payload = $1");
        let row = sqlx::query(&sql)
            .bind(payload_hex.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| asset_from_row(&r)).transpose()
    }

    /// Most recent asset whose output has this SHA-256 (hex, matched
    /// case-insensitively).
    pub async fn find_asset_by_output_sha256(
        &self,
        sha256_hex: &str,
    ) -> Result<Option<AssetRecord>, StoreError> {
        let sql = format!(
            "SELECT {ASSET_COLS} FROM assets WHERE output_sha256 = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(sha256_hex.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| asset_from_row(&r)).transpose()
    }

    // ------------------------------------------------------------ manifests

    /// Insert a manifest. Duplicate label → [`StoreError::Conflict`]; unknown
    /// asset → [`StoreError::InvalidReference`].
    pub async fn insert_manifest(&self, m: &ManifestRecord) -> Result<(), StoreError> {
        crate::sign_log::insert_manifest_on(&self.pool, m).await
    }

    /// Manifest by label.
    pub async fn get_manifest(&self, label: &str) -> Result<Option<ManifestRecord>, StoreError> {
        let sql = format!("SELECT {MANIFEST_COLS} FROM manifests WHERE label = $1");
        let row = sqlx::query(&sql)
            .bind(label)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| manifest_from_row(&r)).transpose()
    }

    // -------------------------------------------------------- verifications

    /// Insert a verification. Duplicate id → [`StoreError::Conflict`].
    pub async fn insert_verification(&self, v: &VerificationRecord) -> Result<(), StoreError> {
        check_non_empty("id", &v.id)?;
        let report = serde_json::to_string(&v.report)
            .map_err(|e| StoreError::Invalid(format!("report: {e}")))?;
        // Verdict label and detection band are copied into indexed columns for listing.
        let text_at = |a: &str, b: &str| v.report[a][b].as_str().map(str::to_owned);
        let sql = format!(
            "INSERT INTO verifications ({VERIFICATION_COLS}, verdict, band) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        sqlx::query(&sql)
            .bind(&v.id)
            .bind(ts_text(v.created_at))
            .bind(v.sha256.to_ascii_lowercase())
            .bind(&v.media_type)
            .bind(v.asset_id.clone())
            .bind(&v.requested_by)
            .bind(report)
            .bind(text_at("verdict", "label"))
            .bind(text_at("detection", "band"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Verification by id.
    pub async fn get_verification(
        &self,
        id: &str,
    ) -> Result<Option<VerificationRecord>, StoreError> {
        let sql = format!("SELECT {VERIFICATION_COLS} FROM verifications WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| verification_from_row(&r)).transpose()
    }

    // ------------------------------------------------------------ decisions
    // Recording a decision appends to the audit log: see `AuditLog::record_decision`.

    /// Decision by id.
    pub async fn get_decision(&self, id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        let sql = format!("SELECT {DECISION_COLS} FROM decisions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decision_from_row(&r)).transpose()
    }

    /// All decisions about a verification, oldest first.
    pub async fn list_decisions_for_verification(
        &self,
        verification_id: &str,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let sql = format!(
            "SELECT {DECISION_COLS} FROM decisions WHERE verification_id = $1 \
             ORDER BY audit_seq"
        );
        let rows = sqlx::query(&sql)
            .bind(verification_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decision_from_row).collect()
    }

    // -------------------------------------------------------------- helpers

    /// Begin a transaction that holds the log's write lock until it ends.
    pub(crate) async fn begin_append<'c>(
        &self,
        conn: &'c mut AnyConnection,
    ) -> Result<sqlx::Transaction<'c, sqlx::Any>, StoreError> {
        match self.backend {
            Backend::Postgres => {
                let mut tx = conn.begin().await?;
                let sql = format!(
                    "SELECT pg_advisory_xact_lock({AUDIT_ADVISORY_LOCK_KEY})::text AS locked"
                );
                sqlx::query(&sql).execute(&mut *tx).await?;
                Ok(tx)
            }
            Backend::Sqlite => Ok(conn.begin_with("BEGIN IMMEDIATE").await?),
        }
    }
}

fn asset_from_row(r: &AnyRow) -> Result<AssetRecord, StoreError> {
    Ok(AssetRecord {
        id: r.try_get("id")?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
        media_type: r.try_get("media_type")?,
        input_sha256: r.try_get("input_sha256")?,
        output_sha256: r.try_get("output_sha256")?,
        watermark_payload: r.try_get("watermark_payload")?,
        manifest_label: r.try_get("manifest_label")?,
        generator: r.try_get("generator")?,
        model: r.try_get("model")?,
        model_version: r.try_get("model_version")?,
        digital_source_type: r.try_get("digital_source_type")?,
        created_by: r.try_get("created_by")?,
        content_fingerprint: r.try_get("content_fingerprint")?,
    })
}

fn manifest_from_row(r: &AnyRow) -> Result<ManifestRecord, StoreError> {
    Ok(ManifestRecord {
        label: r.try_get("label")?,
        asset_id: r.try_get("asset_id")?,
        format: r.try_get("format")?,
        store_bytes: r.try_get("store_bytes")?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
    })
}

fn verification_from_row(r: &AnyRow) -> Result<VerificationRecord, StoreError> {
    let id: String = r.try_get("id")?;
    let report: String = r.try_get("report")?;
    Ok(VerificationRecord {
        report: serde_json::from_str(&report)
            .map_err(|e| StoreError::Corrupt(format!("verification {id} report: {e}")))?,
        id,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
        sha256: r.try_get("sha256")?,
        media_type: r.try_get("media_type")?,
        asset_id: r.try_get("asset_id")?,
        requested_by: r.try_get("requested_by")?,
    })
}

pub(crate) fn decision_from_row(r: &AnyRow) -> Result<DecisionRecord, StoreError> {
    Ok(DecisionRecord {
        id: r.try_get("id")?,
        verification_id: r.try_get("verification_id")?,
        action: r.try_get("action")?,
        policy: r.try_get("policy")?,
        reason: r.try_get("reason")?,
        decided_by: r.try_get("decided_by")?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
        audit_seq: to_u64(r.try_get("audit_seq")?, "audit_seq")?,
    })
}
