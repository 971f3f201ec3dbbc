//! Start-up serialised across processes: two instances starting together on an empty database
//! must not both apply migrations or both create a bootstrap key.
//!
//! PostgreSQL: a session advisory lock (`pg_advisory_lock`) held on a connection taken out of
//! the pool, so a process that dies holding it releases it with its session. SQLite file: an
//! exclusive `flock(2)`-style lock on `<database>.lock` (`std::fs::File::lock`), released by the
//! kernel when the process dies. An in-memory SQLite database is private to its process and
//! needs no lock.

use std::path::{Path, PathBuf};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Connection as _};

use crate::db::Store;
use crate::error::StoreError;

/// Key of the session advisory lock that serialises start-up (ASCII "HMSTART").
pub const STARTUP_ADVISORY_LOCK_KEY: i64 = 0x0048_4d53_5441_5254;

/// An exclusive start-up lock; see the module docs. Release it with [`StartupLock::release`]
/// (dropping it also releases it, less gracefully).
#[derive(Debug)]
pub struct StartupLock {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Postgres(AnyConnection),
    File(std::fs::File),
    None,
}

/// The lock file of a SQLite database file.
pub(crate) fn lock_path(db_file: &Path) -> PathBuf {
    let mut name = db_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes an exclusive lock on `path` (created if missing), waiting for other holders.
pub(crate) async fn lock_file(path: PathBuf) -> Result<std::fs::File, StoreError> {
    tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        f.lock()?;
        Ok::<_, std::io::Error>(f)
    })
    .await
    .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    .map_err(StoreError::Io)
}

impl Store {
    /// Waits for, then takes, the instance start-up lock shared by every process using this
    /// database (see the module docs).
    ///
    /// # Errors
    /// Database or filesystem failures.
    pub async fn startup_lock(&self) -> Result<StartupLock, StoreError> {
        if let Some(path) = &self.lock_path {
            return Ok(StartupLock {
                inner: Inner::File(lock_file(path.clone()).await?),
            });
        }
        if self.backend() != crate::Backend::Postgres {
            return Ok(StartupLock { inner: Inner::None });
        }
        let conn: PoolConnection<Any> = self.pool.acquire().await?;
        // Out of the pool: the lock lives and dies with this session, never with a pooled
        // connection someone else reuses.
        let mut conn = conn.detach();
        let sql = format!("SELECT pg_advisory_lock({STARTUP_ADVISORY_LOCK_KEY})::text AS locked");
        sqlx::query(&sql).execute(&mut conn).await?;
        Ok(StartupLock {
            inner: Inner::Postgres(conn),
        })
    }
}

impl StartupLock {
    /// Releases the lock.
    ///
    /// # Errors
    /// Database or filesystem failures (the lock is released anyway when the session or file
    /// is closed).
    pub async fn release(self) -> Result<(), StoreError> {
        match self.inner {
            Inner::Postgres(mut conn) => {
                let sql =
                    format!("SELECT pg_advisory_unlock({STARTUP_ADVISORY_LOCK_KEY})::text AS u");
                sqlx::query(&sql).execute(&mut conn).await?;
                conn.close().await?;
            }
            Inner::File(f) => f.unlock().map_err(StoreError::Io)?,
            Inner::None => {}
        }
        Ok(())
    }
}
