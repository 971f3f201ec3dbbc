//! Error type of the store.

/// Everything that can go wrong in [`crate::Store`] and [`crate::Cache`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The requested row (or a row the operation depends on) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A unique constraint was violated (duplicate id, key hash, watermark
    /// payload, manifest label, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A foreign key points at a row that does not exist.
    #[error("invalid reference: {0}")]
    InvalidReference(String),
    /// The caller passed a value the store refuses to persist.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The database URL has an unsupported scheme or is malformed.
    #[error("unsupported database url: {0}")]
    UnsupportedUrl(String),
    /// The database can't be reached (connection refused or lost, no pooled
    /// connection within the acquire timeout, server shutting down): a
    /// transient condition, retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// Stored data could not be decoded (bad timestamp, bad JSON, negative
    /// sequence number, ...).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Building an audit entry failed (malformed head hash).
    #[error("audit log error: {0}")]
    Audit(#[from] hallmark_audit::AuditError),
    /// Connecting to Redis failed (only [`crate::Cache::connect`] returns
    /// this; cache operations never fail).
    #[error("cache error: {0}")]
    Cache(#[source] redis::RedisError),
    /// A position or size outside the log (index >= tree size, a size past the
    /// latest checkpoint, old > new).
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// The audit log cannot append: a batch failed to commit, the sequencer stopped,
    /// or the stored log no longer matches its latest checkpoint (fail closed).
    #[error("audit log unavailable: {0}")]
    LogUnavailable(String),
    /// An idempotency key was used before, by the same caller, for a different request;
    /// nothing was recorded.
    #[error("idempotency key reused: {0}")]
    IdempotencyConflict(String),
    /// Filesystem error (creating the SQLite directory).
    #[error("i/o error: {0}")]
    Io(#[source] std::io::Error),
}

impl From<sqlx::Error> for StoreError {
    /// Maps unique violations to [`StoreError::Conflict`], foreign-key
    /// violations to [`StoreError::InvalidReference`], `RowNotFound` to
    /// [`StoreError::NotFound`], lost or refused connections and pool
    /// timeouts to [`StoreError::Unavailable`]; everything else to
    /// [`StoreError::Database`].
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::InvalidReference(db.message().to_string())
            }
            sqlx::Error::RowNotFound => StoreError::NotFound("row not found".into()),
            // SQLSTATE classes 08 (connection exception) and 57P (operator intervention:
            // admin shutdown, crash shutdown, cannot connect now).
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
            {
                StoreError::Unavailable(e)
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            _ => StoreError::Database(e),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(e)
    }
}
