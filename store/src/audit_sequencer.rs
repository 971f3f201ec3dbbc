//! The sequencer of [`AuditLog`]: one task per process turns queued submissions into
//! batches, each written with one signed checkpoint in one transaction holding the log's
//! write lock (see the module documentation of `audit_log`).
//!
//! A *submission* is one caller's unit: one entry (`POST /v1/decisions`, a generic
//! [`AuditLog::append`]) or several (`POST /v1/decisions/batch`). A submission is never
//! split across checkpoints, and its entries get consecutive leaf indices. Admission runs
//! inside the write transaction, once per batch:
//!
//! * every decision's verification must exist (one `IN (…)` query per batch, instead of
//!   one query per request): a submission naming an unknown one fails alone
//!   ([`StoreError::NotFound`]), the rest of the batch is written;
//! * a submission with an idempotency key whose `(scope, key)` is stored (a committed
//!   earlier request) or taken by an earlier submission of the same batch (a retry racing
//!   the original) is not written again: it gets the original's receipts (same fingerprint)
//!   or [`StoreError::IdempotencyConflict`] (another request under the same key). The row
//!   recording the key commits with the entries, so the check is race-free across
//!   processes (all appends hold the one write lock).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use hallmark_audit::{canonical_json_string, leaf_hash, EntryBody, Hash, MerkleTree};
use sqlx::{AnyConnection, Row};
use tokio::sync::{mpsc, oneshot};

use crate::audit_log::{Appended, AuditLog};
use crate::audit_log_sql::{insert_decisions, insert_leaves, proof_err, sync_tree};
use crate::db::{now, to_i64, to_u64, ts_text};
use crate::decision_log::{IdempotencyKey, StoredKey};
use crate::error::StoreError;
use crate::models::DecisionRecord;

/// One caller's entries, appended together (consecutive leaves, one checkpoint).
pub(crate) struct Submission {
    /// The entries, each with its decision row when it records a decision.
    pub(crate) entries: Vec<(EntryBody, Option<DecisionRecord>)>,
    /// Idempotency key of the request, if it sent one.
    pub(crate) idem: Option<IdempotencyKey>,
}

pub(crate) struct Job {
    sub: Submission,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// What a submission became: its entries in a signed checkpoint (with the decision rows,
/// `audit_seq` set), freshly written or replayed for a repeated idempotency key.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) items: Vec<(Appended, Option<DecisionRecord>)>,
    pub(crate) replayed: bool,
}

/// What admission decided for one submission of a batch.
enum Plan {
    Fail(StoreError),
    /// Key stored by an earlier batch, same request: answer its receipts.
    Replay(StoredKey),
    /// Key taken by submission `j` of this batch, same request: answer j's receipts.
    SameAs(usize),
    /// Write; its first entry goes `offset` leaves after the batch start.
    Write {
        offset: u64,
    },
}

impl AuditLog {
    /// Queue `sub` and wait until it is in a signed, stored checkpoint.
    pub(crate) async fn submit(&self, sub: Submission) -> Result<Outcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || StoreError::LogUnavailable("the sequencer has stopped".into());
        self.tx
            .send(Job { sub, reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// The sequencer loop: take everything queued (whole submissions, up to `max` entries;
    /// a larger submission goes alone) and append it as one batch.
    pub(crate) async fn sequence(self, mut rx: mpsc::Receiver<Job>, max: usize) {
        let mut held: Option<Job> = None;
        loop {
            let first = match held.take() {
                Some(j) => j,
                None => match rx.recv().await {
                    Some(j) => j,
                    None => return,
                },
            };
            let mut entries = first.sub.entries.len();
            let mut batch = vec![first];
            while entries < max {
                match rx.try_recv() {
                    Ok(j) if entries + j.sub.entries.len() > max => {
                        held = Some(j);
                        break;
                    }
                    Ok(j) => {
                        entries += j.sub.entries.len();
                        batch.push(j);
                    }
                    Err(_) => break,
                }
            }
            let (subs, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|j| (j.sub, j.reply)).unzip();
            match self.append_batch(subs).await {
                Ok(done) => {
                    for (r, outcome) in replies.into_iter().zip(done) {
                        let _ = r.send(outcome);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit log batch failed");
                    let msg = e.to_string();
                    for r in replies {
                        let _ = r.send(Err(StoreError::LogUnavailable(msg.clone())));
                    }
                }
            }
        }
    }

    /// One batch: admit, write, sign, commit; then one outcome per submission. An `Err`
    /// means nothing of the batch was committed.
    async fn append_batch(
        &self,
        subs: Vec<Submission>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        let mut tree = self.tree.lock().await;
        let mut conn = self.store.pool.acquire().await?;
        let mut tx = self.store.begin_append(&mut conn).await?;
        let verified = self.verified.load(Ordering::Acquire);
        let start = sync_tree(&mut tree, &mut tx, Some(verified)).await?;
        let r = match admit(&mut tx, &subs).await {
            Ok(plans) => self
                .write_batch(&mut tree, &mut tx, start, &subs, &plans)
                .await
                .map(|w| (plans, w)),
            Err(e) => Err(e),
        };
        let r = match r {
            Ok(v) => tx.commit().await.map(|()| v).map_err(StoreError::from),
            Err(e) => Err(e),
        };
        let (plans, (entries, note)) = match r {
            Ok(v) => v,
            Err(e) => {
                tree.truncate(start);
                self.verified.store(u64::MAX, Ordering::Release);
                return Err(e);
            }
        };
        let size = tree.size();
        self.verified.store(size, Ordering::Release);
        let mut out: Vec<Result<Outcome, StoreError>> = Vec::with_capacity(subs.len());
        for (sub, plan) in subs.into_iter().zip(plans) {
            let outcome = match plan {
                Plan::Fail(e) => Err(e),
                Plan::Replay(key) => self.replay(&tree, &key).await,
                Plan::SameAs(j) => match out.get(j) {
                    Some(Ok(o)) => Ok(Outcome {
                        items: o.items.clone(),
                        replayed: true,
                    }),
                    _ => Err(StoreError::LogUnavailable(
                        "the original request under this idempotency key failed".into(),
                    )),
                },
                Plan::Write { offset } => {
                    written(&tree, start, offset, sub, &entries, note.as_deref())
                }
            };
            out.push(outcome);
        }
        Ok(out)
    }

    /// Insert the leaves, decision rows and idempotency keys of the submissions planned
    /// for writing, then sign and store the checkpoint. Returns `(leaf hash, entry)` per
    /// written leaf and the note (`None` when nothing was written: no new checkpoint).
    async fn write_batch(
        &self,
        tree: &mut MerkleTree,
        conn: &mut AnyConnection,
        start: u64,
        subs: &[Submission],
        plans: &[Plan],
    ) -> Result<(Vec<(Hash, String)>, Option<String>), StoreError> {
        let total: u64 = subs
            .iter()
            .zip(plans)
            .filter(|(_, p)| matches!(p, Plan::Write { .. }))
            .map(|(s, _)| s.entries.len() as u64)
            .sum();
        let mut entries = Vec::with_capacity(total as usize);
        let mut leaf_rows = Vec::with_capacity(total as usize);
        let mut decisions = Vec::new();
        let mut keys = Vec::new();
        for (sub, plan) in subs.iter().zip(plans) {
            let Plan::Write { offset } = plan else {
                continue;
            };
            if let Some(k) = &sub.idem {
                keys.push((k, start + offset + 1, sub.entries.len() as u64));
            }
            for (body, decision) in &sub.entries {
                let index = start + entries.len() as u64;
                let created_at = ts_text(body.timestamp);
                let text = canonical_json_string(&body.to_json(index + 1));
                let h = leaf_hash(text.as_bytes());
                tree.push(h);
                leaf_rows.push((index, hex::encode(h), text.clone(), created_at));
                if let Some(d) = decision {
                    let mut d = d.clone();
                    d.audit_seq = index + 1;
                    decisions.push(d);
                }
                entries.push((h, text));
            }
        }
        if entries.is_empty() {
            return Ok((entries, None));
        }
        insert_leaves(conn, &leaf_rows).await?;
        insert_decisions(conn, &decisions).await?;
        insert_keys(conn, &keys, start + total).await?;
        let note = self.sign_and_store(tree, conn, vec![]).await?;
        Ok((entries, Some(note)))
    }
}

/// The outcome of a submission written at `start + offset`: receipts against the batch's
/// checkpoint `note`, proofs from the in-memory tree.
fn written(
    tree: &MerkleTree,
    start: u64,
    offset: u64,
    sub: Submission,
    entries: &[(Hash, String)],
    note: Option<&str>,
) -> Result<Outcome, StoreError> {
    let size = tree.size();
    let mut items = Vec::with_capacity(sub.entries.len());
    for (k, (_, decision)) in sub.entries.into_iter().enumerate() {
        let at = offset as usize + k;
        let leaf_index = start + at as u64;
        let (leaf_hash, entry) = entries
            .get(at)
            .cloned()
            .ok_or_else(|| StoreError::LogUnavailable(format!("leaf {leaf_index} not written")))?;
        let appended = Appended {
            leaf_index,
            leaf_hash,
            entry,
            tree_size: size,
            proof: tree.inclusion_proof(leaf_index, size).map_err(proof_err)?,
            checkpoint: note.unwrap_or_default().to_owned(),
        };
        let decision = decision.map(|mut d| {
            d.audit_seq = leaf_index + 1;
            d
        });
        items.push((appended, decision));
    }
    Ok(Outcome {
        items,
        replayed: false,
    })
}

/// Admission of a batch (inside the write transaction): verifications exist,
/// idempotency keys are new or repeat the same request.
async fn admit(conn: &mut AnyConnection, subs: &[Submission]) -> Result<Vec<Plan>, StoreError> {
    let ids: BTreeSet<&str> = subs
        .iter()
        .flat_map(|s| &s.entries)
        .filter_map(|(_, d)| d.as_ref().map(|d| d.verification_id.as_str()))
        .collect();
    let existing = existing_verifications(conn, &ids).await?;
    let claimed: Vec<&IdempotencyKey> = subs.iter().filter_map(|s| s.idem.as_ref()).collect();
    let stored = stored_keys(conn, &claimed).await?;
    let mut seen: HashMap<(&str, &str), (&str, usize)> = HashMap::new();
    let mut plans = Vec::with_capacity(subs.len());
    let mut offset = 0u64;
    for (j, sub) in subs.iter().enumerate() {
        let missing = sub
            .entries
            .iter()
            .filter_map(|(_, d)| d.as_ref())
            .find(|d| !existing.contains(&d.verification_id));
        if let Some(d) = missing {
            plans.push(Plan::Fail(StoreError::NotFound(format!(
                "verification {}",
                d.verification_id
            ))));
            continue;
        }
        if let Some(k) = &sub.idem {
            let id = (k.scope.as_str(), k.key.as_str());
            let earlier = stored
                .get(&(k.scope.clone(), k.key.clone()))
                .map(|s| (s.fingerprint.as_str(), Plan::Replay(s.clone())))
                .or_else(|| seen.get(&id).map(|(fp, first)| (*fp, Plan::SameAs(*first))));
            if let Some((fingerprint, plan)) = earlier {
                plans.push(if fingerprint == k.fingerprint {
                    plan
                } else {
                    Plan::Fail(StoreError::IdempotencyConflict(format!(
                        "Idempotency-Key {:?} was used for a different request",
                        k.key
                    )))
                });
                continue;
            }
            seen.insert(id, (k.fingerprint.as_str(), j));
        }
        plans.push(Plan::Write { offset });
        offset += sub.entries.len() as u64;
    }
    Ok(plans)
}

/// Which of `ids` exist in `verifications`.
async fn existing_verifications(
    conn: &mut AnyConnection,
    ids: &BTreeSet<&str>,
) -> Result<BTreeSet<String>, StoreError> {
    let mut found = BTreeSet::new();
    let ids: Vec<&str> = ids.iter().copied().collect();
    for chunk in ids.chunks(500) {
        let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id FROM verifications WHERE id IN ({})",
            params.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            found.insert(row.try_get::<String, _>("id")?);
        }
    }
    Ok(found)
}

/// The stored rows of the `(scope, key)` pairs claimed in this batch.
async fn stored_keys(
    conn: &mut AnyConnection,
    claimed: &[&IdempotencyKey],
) -> Result<HashMap<(String, String), StoredKey>, StoreError> {
    let mut out = HashMap::new();
    for chunk in claimed.chunks(200) {
        let cond: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "(api_key_id = ${} AND idem_key = ${})",
                    2 * i + 1,
                    2 * i + 2
                )
            })
            .collect();
        let sql = format!(
            "SELECT api_key_id, idem_key, fingerprint, first_seq, entry_count, tree_size \
             FROM decision_idempotency WHERE {}",
            cond.join(" OR ")
        );
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q.bind(k.scope.clone()).bind(k.key.clone());
        }
        for r in q.fetch_all(&mut *conn).await? {
            let key = (r.try_get("api_key_id")?, r.try_get("idem_key")?);
            out.insert(
                key,
                StoredKey {
                    fingerprint: r.try_get("fingerprint")?,
                    first_seq: to_u64(r.try_get("first_seq")?, "first_seq")?,
                    count: to_u64(r.try_get("entry_count")?, "entry_count")?,
                    tree_size: to_u64(r.try_get("tree_size")?, "tree_size")?,
                },
            );
        }
    }
    Ok(out)
}

/// Record the idempotency keys of the written submissions: `(key, first seq, entries)`,
/// all proved by the checkpoint of `tree_size` (one multi-row INSERT).
async fn insert_keys(
    conn: &mut AnyConnection,
    keys: &[(&IdempotencyKey, u64, u64)],
    tree_size: u64,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let created_at = ts_text(now());
    let rows: Vec<String> = (0..keys.len())
        .map(|i| {
            let ps: Vec<String> = (1..=7).map(|k| format!("${}", i * 7 + k)).collect();
            format!("({})", ps.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO decision_idempotency (api_key_id, idem_key, fingerprint, first_seq, \
         entry_count, tree_size, created_at) VALUES {}",
        rows.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for (k, first_seq, count) in keys {
        q = q
            .bind(k.scope.clone())
            .bind(k.key.clone())
            .bind(k.fingerprint.clone())
            .bind(to_i64(*first_seq, "first_seq")?)
            .bind(to_i64(*count, "entry_count")?)
            .bind(to_i64(tree_size, "tree_size")?)
            .bind(created_at.clone());
    }
    q.execute(&mut *conn).await?;
    Ok(())
}
