//! Test helpers: throw-away databases on the real services.
//!
//! Compiled for this crate's own tests and, for other crates, with the
//! `testing` cargo feature. Never enable it in production builds.
//!
//! ```text
//! let pg = hallmark_store::testing::TestDatabase::postgres().await?;
//! let store = hallmark_store::Store::connect(pg.url()).await?;
//! // ...
//! store.close().await;
//! pg.drop_database().await?;
//! ```

use std::path::Path;

use sqlx::{Connection, Executor, PgConnection};

use crate::error::StoreError;

/// Admin URL used when `HALLMARK_TEST_PG_URL` is not set.
pub const DEFAULT_ADMIN_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The admin database URL: `$HALLMARK_TEST_PG_URL` or
/// [`DEFAULT_ADMIN_PG_URL`].
pub fn admin_postgres_url() -> String {
    std::env::var("HALLMARK_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_ADMIN_PG_URL.to_string())
}

/// Replace the database name (path) of a Postgres URL, keeping the query.
fn with_database(url: &str, db: &str) -> Result<String, StoreError> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base
        .find("://")
        .ok_or_else(|| StoreError::UnsupportedUrl(url.to_string()))?
        + 3;
    let host_part_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..host_part_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

fn database_name(url: &str) -> Result<String, StoreError> {
    let base = url.split('?').next().unwrap_or(url);
    let name = base.rsplit('/').next().unwrap_or_default();
    if name.starts_with("hallmark_test_")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(name.to_string())
    } else {
        Err(StoreError::Invalid(format!(
            "refusing to drop {name:?}: not a hallmark_test_* database"
        )))
    }
}

/// Create a fresh, empty database `hallmark_test_<uuid-simple>` on the admin
/// server and return its URL.
pub async fn fresh_postgres_url() -> Result<String, StoreError> {
    let admin = admin_postgres_url();
    let name = format!("hallmark_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin).await?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    conn.close().await?;
    with_database(&admin, &name)
}

/// Drop a database created by [`fresh_postgres_url`] (forcibly terminating
/// remaining connections). Only `hallmark_test_*` names are accepted.
pub async fn drop_postgres_database(url: &str) -> Result<(), StoreError> {
    let name = database_name(url)?;
    let mut conn = PgConnection::connect(&admin_postgres_url()).await?;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    conn.close().await?;
    Ok(())
}

/// `sqlite://` URL of a (not yet existing) database file inside `dir`.
pub fn fresh_sqlite_url(dir: &Path) -> String {
    let file = dir.join(format!("hallmark-{}.db", uuid::Uuid::new_v4().simple()));
    format!("sqlite://{}", file.display())
}

/// A throw-away Postgres database; call [`TestDatabase::drop_database`] at
/// the end of the test (there is no async `Drop`).
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
}

impl TestDatabase {
    /// Create a fresh Postgres database.
    pub async fn postgres() -> Result<TestDatabase, StoreError> {
        Ok(TestDatabase {
            url: fresh_postgres_url().await?,
        })
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drop it.
    pub async fn drop_database(self) -> Result<(), StoreError> {
        drop_postgres_database(&self.url).await
    }
}

impl crate::Store {
    /// Rows in `table` (a table name from the schema; tests only).
    pub async fn count_rows(&self, table: &str) -> Result<i64, StoreError> {
        use sqlx::Row as _;
        let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn url_rewriting() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "y").unwrap(),
            "postgres://u:p@h/y?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "z").unwrap(),
            "postgres://h:5432/z"
        );
        assert!(database_name("postgres://h/postgres").is_err());
        assert_eq!(
            database_name("postgres://h/hallmark_test_abc?x=1").unwrap(),
            "hallmark_test_abc"
        );
    }
}
