//! SQL and tree helpers of the sequencer ([`crate::AuditLog`]): loading stored leaves into
//! the in-memory tree, checking it against the latest checkpoint, batch inserts.

use hallmark_audit::{leaf_hash, MerkleTree, ProofError};
use sqlx::{AnyConnection, Row};

use crate::audit_log::StoredCheckpoint;
use crate::db::{to_i64, to_u64, ts_text, DECISION_COLS};
use crate::error::StoreError;
use crate::models::DecisionRecord;

pub(crate) fn proof_err(e: ProofError) -> StoreError {
    match e {
        ProofError::OutOfRange(m) => StoreError::OutOfRange(m),
        ProofError::Invalid(m) => StoreError::Corrupt(m.into()),
    }
}

pub(crate) fn checkpoint_from_row(r: &sqlx::any::AnyRow) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        tree_size: to_u64(r.try_get("tree_size")?, "tree_size")?,
        root_hash: r.try_get("root_hash")?,
        note: r.try_get("note")?,
    })
}

pub(crate) async fn latest_checkpoint<'e, E>(
    exec: E,
) -> Result<Option<StoredCheckpoint>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(
        "SELECT tree_size, root_hash, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
    )
    .fetch_optional(exec)
    .await?;
    row.map(|r| checkpoint_from_row(&r)).transpose()
}

pub(crate) fn check_against_checkpoint(
    tree: &MerkleTree,
    latest: Option<&StoredCheckpoint>,
    size: u64,
) -> Result<(), StoreError> {
    let cp_size = latest.map_or(0, |c| c.tree_size);
    if size != cp_size {
        return Err(StoreError::LogUnavailable(format!(
            "{size} leaves stored but the latest checkpoint signs {cp_size}"
        )));
    }
    if let Some(cp) = latest {
        let root = tree.root(cp.tree_size).map_err(proof_err)?;
        if hex::encode(root) != cp.root_hash {
            return Err(StoreError::LogUnavailable(format!(
                "the stored leaves do not hash to the root of checkpoint {}",
                cp.tree_size
            )));
        }
    }
    Ok(())
}

/// Inside the write lock: make the in-memory tree equal the stored leaves and check
/// it against the latest checkpoint, unless `check` is `None` (no check) or
/// `Some(size)` equal to the stored size (this process signed or checked that size and
/// nobody appended since). Returns the size.
pub(crate) async fn sync_tree(
    tree: &mut MerkleTree,
    conn: &mut AnyConnection,
    check: Option<u64>,
) -> Result<u64, StoreError> {
    let row = sqlx::query("SELECT MAX(leaf_index) AS m FROM audit_leaves")
        .fetch_one(&mut *conn)
        .await?;
    let max: Option<i64> = row.try_get("m")?;
    let size = match max {
        Some(m) => to_u64(m, "leaf_index")? + 1,
        None => 0,
    };
    if tree.size() > size {
        tree.truncate(size);
    }
    if tree.size() < size {
        load_leaves(tree, conn, size, true).await?;
    }
    if check.is_some_and(|v| v != size) {
        let latest = latest_checkpoint(&mut *conn).await?;
        check_against_checkpoint(tree, latest.as_ref(), size)?;
    }
    Ok(size)
}

/// Push stored leaves `[tree.size(), size)`; a NULL leaf hash (a migrated chain
/// entry) is computed from the body and, with `backfill`, written back.
pub(crate) async fn load_leaves(
    tree: &mut MerkleTree,
    conn: &mut AnyConnection,
    size: u64,
    backfill: bool,
) -> Result<(), StoreError> {
    while tree.size() < size {
        let from = tree.size();
        let rows = sqlx::query(
            "SELECT leaf_index, leaf_hash, body FROM audit_leaves \
             WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index LIMIT 10000",
        )
        .bind(to_i64(from, "leaf_index")?)
        .bind(to_i64(size, "leaf_index")?)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Err(StoreError::Corrupt(format!("audit leaf {from} is missing")));
        }
        let mut fills = Vec::new();
        for r in &rows {
            let index = to_u64(r.try_get("leaf_index")?, "leaf_index")?;
            if index != tree.size() {
                return Err(StoreError::Corrupt(format!(
                    "audit leaf {} is missing",
                    tree.size()
                )));
            }
            let stored: Option<String> = r.try_get("leaf_hash")?;
            let h = match stored {
                Some(s) => hallmark_audit::parse_hex_hash(&s)
                    .map_err(|e| StoreError::Corrupt(format!("audit leaf {index}: {e}")))?,
                None => {
                    let body: String = r.try_get("body")?;
                    let h = leaf_hash(body.as_bytes());
                    fills.push((index, hex::encode(h)));
                    h
                }
            };
            tree.push(h);
        }
        if backfill {
            for (index, h) in fills {
                sqlx::query("UPDATE audit_leaves SET leaf_hash = $1 WHERE leaf_index = $2")
                    .bind(h)
                    .bind(to_i64(index, "leaf_index")?)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
}

pub(crate) async fn insert_leaves(
    conn: &mut AnyConnection,
    rows: &[(u64, String, String, String)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql =
        String::from("INSERT INTO audit_leaves (leaf_index, leaf_hash, body, created_at) VALUES ");
    for i in 0..rows.len() {
        let p = i * 4;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4));
    }
    let mut q = sqlx::query(&sql);
    for (index, h, body, created_at) in rows {
        q = q
            .bind(to_i64(*index, "leaf_index")?)
            .bind(h.clone())
            .bind(body.clone())
            .bind(created_at.clone());
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

pub(crate) async fn insert_decisions(
    conn: &mut AnyConnection,
    rows: &[DecisionRecord],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = format!("INSERT INTO decisions ({DECISION_COLS}) VALUES ");
    for i in 0..rows.len() {
        let p = i * 8;
        if i > 0 {
            sql.push_str(", ");
        }
        let ps: Vec<String> = (1..=8).map(|k| format!("${}", p + k)).collect();
        sql.push('(');
        sql.push_str(&ps.join(", "));
        sql.push(')');
    }
    let mut q = sqlx::query(&sql);
    for d in rows {
        q = q
            .bind(d.id.clone())
            .bind(d.verification_id.clone())
            .bind(d.action.clone())
            .bind(d.policy.clone())
            .bind(d.reason.clone())
            .bind(d.decided_by.clone())
            .bind(ts_text(d.created_at))
            .bind(to_i64(d.audit_seq, "audit_seq")?);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}
