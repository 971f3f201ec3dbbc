//! The audit log on the database: an RFC 9162 transparency log (leaves in
//! `audit_leaves`, every signed checkpoint in `audit_checkpoints`) with one
//! sequencer per process.
//!
//! ## Sequencing
//!
//! Callers hand *submissions* (one entry, or a caller's batch of decisions) to
//! [`AuditLog::append`] / [`AuditLog::record_decision`] / [`AuditLog::record_decisions`];
//! one task per process takes everything queued (whole submissions, at most
//! `batch_max_entries` entries, default 256) and, in ONE transaction holding the log's
//! write lock (Postgres `pg_advisory_xact_lock`, SQLite `BEGIN IMMEDIATE`):
//!
//! 1. reads the stored size and loads leaves other processes appended since
//!    (so several processes on one Postgres form one log, without gaps);
//! 2. checks that the in-memory tree reproduces the latest stored checkpoint's root
//!    (it refuses to sign over a tree that does not: fail closed);
//! 3. admits the submissions: one query checks every decision's verification exists, one
//!    looks up their idempotency keys (a repeated key is answered with the original
//!    receipts, not written again; see `audit_sequencer`);
//! 4. inserts the batch's leaves, decision rows and idempotency keys (one multi-row
//!    INSERT each), signs a checkpoint over the new size and stores it;
//! 5. commits, then answers every caller with receipts (inclusion proofs against that
//!    checkpoint, computed from the in-memory tree: no per-receipt database read).
//!
//! A caller is answered only after the commit, so an acknowledged entry is always in
//! a stored, signed checkpoint. The batch that forms while one commits is the next
//! batch (group commit): no timer adds latency, and a batch waits at most one commit.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use hallmark_audit::{Checkpoint, EntryBody, Hash, MerkleTree, NoteSigner, NoteVerifier, Receipt};
use sqlx::AnyConnection;
use tokio::sync::{mpsc, Mutex};

pub(crate) use crate::audit_log_sql::checkpoint_from_row;
use crate::audit_log_sql::{
    check_against_checkpoint, latest_checkpoint, load_leaves, proof_err, sync_tree,
};
use crate::audit_sequencer::{Job, Submission};
use crate::db::{check_non_empty, now, to_i64, ts_text};
use crate::error::StoreError;
use crate::Store;

/// Default largest batch (entries per checkpoint).
pub const DEFAULT_BATCH_MAX_ENTRIES: usize = 256;

/// Sequencer settings.
#[derive(Debug, Clone)]
pub struct AuditLogConfig {
    /// Most entries per batch (and per checkpoint), 1–1000.
    pub batch_max_entries: usize,
    /// Capacity of the queue in front of the sequencer.
    pub queue_capacity: usize,
}

impl Default for AuditLogConfig {
    fn default() -> Self {
        Self {
            batch_max_entries: DEFAULT_BATCH_MAX_ENTRIES,
            queue_capacity: 8192,
        }
    }
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size it signs.
    pub tree_size: u64,
    /// Root hash (hex).
    pub root_hash: String,
    /// The signed note.
    pub note: String,
}

/// An appended entry, acknowledged: in a stored, signed checkpoint.
#[derive(Debug, Clone)]
pub struct Appended {
    /// 0-based leaf index (the entry's `seq` is `leaf_index + 1`).
    pub leaf_index: u64,
    /// `SHA-256(0x00 ‖ entry)`.
    pub leaf_hash: Hash,
    /// The leaf data: RFC 8785 canonical JSON of the entry.
    pub entry: String,
    /// Size of the checkpoint the proof leads to.
    pub tree_size: u64,
    /// Inclusion proof against that checkpoint.
    pub proof: Vec<Hash>,
    /// The signed checkpoint.
    pub checkpoint: String,
}

impl Appended {
    /// The offline-verifiable receipt.
    pub fn receipt(&self) -> Receipt {
        Receipt::new(
            self.leaf_index,
            &self.leaf_hash,
            &self.proof,
            self.checkpoint.clone(),
            Some(self.entry.clone()),
        )
    }
}

/// Handle to the log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    pub(crate) store: Store,
    pub(crate) signer: Arc<NoteSigner>,
    pub(crate) tree: Arc<Mutex<MerkleTree>>,
    /// Largest size whose root this process checked against (or signed as) a stored
    /// checkpoint; `u64::MAX` = none. Skips re-reading the checkpoint when nobody else
    /// appended.
    pub(crate) verified: Arc<AtomicU64>,
    pub(crate) tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("origin", &self.signer.name())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Load the tree from the database, adopt the entries of a migrated hash chain
    /// (first start after the migration: the chain is re-verified, then a first
    /// checkpoint is signed over them) and start the sequencer task.
    ///
    /// # Errors
    /// Database errors. An inconsistent log does not stop the start: appends then
    /// fail with [`StoreError::LogUnavailable`] and [`AuditLog::verify`] says why.
    pub async fn start(
        store: Store,
        signer: NoteSigner,
        cfg: AuditLogConfig,
    ) -> Result<AuditLog, StoreError> {
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let log = AuditLog {
            store,
            signer: Arc::new(signer),
            tree: Arc::new(Mutex::new(MerkleTree::new())),
            verified: Arc::new(AtomicU64::new(u64::MAX)),
            tx,
        };
        log.adopt_and_load().await?;
        let worker = log.clone();
        let max = cfg.batch_max_entries.clamp(1, 1000);
        tokio::spawn(async move { worker.sequence(rx, max).await });
        Ok(log)
    }

    /// The log's origin (the key name).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The note verifier key of the log.
    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// Append a generic entry (any `kind`) and wait until it is in a signed checkpoint.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty kind; [`StoreError::LogUnavailable`] when
    /// the batch could not be committed or the log is inconsistent.
    pub async fn append(&self, body: EntryBody) -> Result<Appended, StoreError> {
        check_non_empty("kind", &body.kind)?;
        let out = self
            .submit(Submission {
                entries: vec![(body, None)],
                idem: None,
            })
            .await?;
        out.items
            .into_iter()
            .next()
            .map(|(a, _)| a)
            .ok_or_else(|| StoreError::LogUnavailable("the sequencer answered nothing".into()))
    }

    async fn adopt_and_load(&self) -> Result<(), StoreError> {
        let mut tree = self.tree.lock().await;
        let mut conn = self.store.pool.acquire().await?;
        let mut tx = self.store.begin_append(&mut conn).await?;
        let size = sync_tree(&mut tree, &mut tx, None).await?;
        let latest = latest_checkpoint(&mut *tx).await?;
        let adopt = if latest.is_none() && size > 0 {
            match crate::audit_verify::check_legacy_chain(&mut tx, size).await {
                Ok(()) => true,
                Err(StoreError::LogUnavailable(m)) => {
                    tracing::error!(reason = %m, "not adopting the migrated hash-chain log");
                    false
                }
                Err(e) => return Err(e),
            }
        } else {
            false
        };
        if adopt {
            self.sign_and_store(
                &tree,
                &mut tx,
                vec!["hallmark: adopted the hash-chain log".into()],
            )
            .await?;
            tracing::info!(
                entries = size,
                "adopted the hash-chain audit log as the first leaves"
            );
        }
        let latest = latest_checkpoint(&mut *tx).await?;
        tx.commit().await?;
        if let Err(e) = check_against_checkpoint(&tree, latest.as_ref(), size) {
            tracing::error!(error = %e, "the audit log does not match its latest checkpoint; appends are refused (GET /v1/audit/verify says where)");
        }
        Ok(())
    }

    /// Sign a checkpoint over the whole in-memory tree and store it (inside the append
    /// transaction). Returns the signed note.
    pub(crate) async fn sign_and_store(
        &self,
        tree: &MerkleTree,
        conn: &mut AnyConnection,
        extensions: Vec<String>,
    ) -> Result<String, StoreError> {
        let size = tree.size();
        let root = tree.root(size).map_err(proof_err)?;
        let note = Checkpoint {
            origin: self.signer.name().to_owned(),
            size,
            root,
            extensions,
        }
        .sign(&self.signer)
        .map_err(|e| StoreError::LogUnavailable(e.to_string()))?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root_hash, note, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(to_i64(size, "tree_size")?)
        .bind(hex::encode(root))
        .bind(&note)
        .bind(ts_text(now()))
        .execute(&mut *conn)
        .await?;
        Ok(note)
    }

    /// The latest stored checkpoint.
    ///
    /// # Errors
    /// Database errors.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        latest_checkpoint(&self.store.pool).await
    }

    /// The stored checkpoint of exactly `tree_size`, if one was signed.
    ///
    /// # Errors
    /// Database errors.
    pub async fn checkpoint_at(
        &self,
        tree_size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT tree_size, root_hash, note FROM audit_checkpoints WHERE tree_size = $1",
        )
        .bind(to_i64(tree_size, "tree_size")?)
        .fetch_optional(&self.store.pool)
        .await?;
        row.map(|r| checkpoint_from_row(&r)).transpose()
    }

    /// Stored checkpoints with `tree_size > after`, ascending, at most `limit` (≤ 10,000).
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_checkpoints(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT tree_size, root_hash, note FROM audit_checkpoints WHERE tree_size > $1 \
             ORDER BY tree_size LIMIT $2",
        )
        .bind(to_i64(after, "after")?)
        .bind(i64::from(limit.min(10_000)))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    /// Bring the in-memory tree up to `size` leaves (read-only; for proofs).
    async fn tree_with(
        &self,
        size: u64,
    ) -> Result<tokio::sync::MutexGuard<'_, MerkleTree>, StoreError> {
        let mut tree = self.tree.lock().await;
        if tree.size() < size {
            let mut conn = self.store.pool.acquire().await?;
            load_leaves(&mut tree, &mut conn, size, false).await?;
        }
        Ok(tree)
    }

    /// Inclusion proof of leaf `index` in the tree of `tree_size` leaves, which must
    /// not exceed the latest checkpoint.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`] unless `index < tree_size <= latest size`.
    pub async fn inclusion_proof(
        &self,
        index: u64,
        tree_size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let latest = self.latest_size().await?;
        if tree_size > latest || index >= tree_size {
            return Err(StoreError::OutOfRange(format!(
                "need index < tree_size <= {latest} (the latest checkpoint); got index {index}, tree_size {tree_size}"
            )));
        }
        let tree = self.tree_with(tree_size).await?;
        tree.inclusion_proof(index, tree_size).map_err(proof_err)
    }

    /// Consistency proof between tree sizes `old` and `new`.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`] unless `0 < old <= new <= latest size`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        let latest = self.latest_size().await?;
        if new > latest || old == 0 || old > new {
            return Err(StoreError::OutOfRange(format!(
                "need 0 < old <= new <= {latest} (the latest checkpoint); got old {old}, new {new}"
            )));
        }
        let tree = self.tree_with(new).await?;
        tree.consistency_proof(old, new).map_err(proof_err)
    }

    async fn latest_size(&self) -> Result<u64, StoreError> {
        Ok(self.latest_checkpoint().await?.map_or(0, |c| c.tree_size))
    }
}
