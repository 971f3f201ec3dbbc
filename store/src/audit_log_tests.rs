//! Audit log tests on PostgreSQL and SQLite: receipts, proofs, concurrency across two
//! processes' worth of pools, insider tampering, and the hash-chain migration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hallmark_audit::{
    leaf_hash, verify_consistency, AuditEntry, Checkpoint, EntryBody, LogFailureReason, NoteSigner,
};
use serde_json::json;

use crate::testing::{fresh_sqlite_url, TestDatabase};
use crate::tests::{decision, verification, Ctx};
use crate::*;

const SKEY_NAME: &str = "hallmark.test/audit";

fn signer(seed: u8) -> NoteSigner {
    NoteSigner::from_seed(SKEY_NAME, [seed; 32]).unwrap()
}

async fn start(store: &Store) -> AuditLog {
    AuditLog::start(store.clone(), signer(7), AuditLogConfig::default())
        .await
        .unwrap()
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                crate::tests::run(crate::Backend::Postgres, super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                crate::tests::run(crate::Backend::Sqlite, super::$name).await;
            }
        }
    )*};
}

both_backends!(
    receipts_and_proofs,
    two_pools_append_one_log,
    tampering_is_located,
    idempotency_across_pools,
);

async fn receipts_and_proofs(ctx: Ctx) {
    let s = &ctx.store;
    let log = start(s).await;
    assert!(log.verify().await.unwrap().valid);
    let v = verification(&new_id());
    s.insert_verification(&v).await.unwrap();
    let vk = log.verifier();
    let mut notes = Vec::new();
    for i in 0..5 {
        let (rec, a) = log.record_decision(&decision(&v.id, i)).await.unwrap();
        assert_eq!(rec.audit_seq, i as u64 + 1);
        assert_eq!(a.leaf_index, i as u64);
        let cp = a.receipt().verify(&vk).unwrap();
        assert_eq!(cp.size, i as u64 + 1);
        assert_eq!(s.get_decision(&rec.id).await.unwrap().unwrap(), rec);
        notes.push(cp);
    }
    let generic = log
        .append(EntryBody::new("key_created", "admin", json!({"key": "k1"})))
        .await
        .unwrap();
    assert_eq!(generic.leaf_index, 5);
    let r = log.verify().await.unwrap();
    assert!(r.valid, "{r:?}");
    assert_eq!((r.tree_size, r.checkpoints_checked), (6, 6));

    // Proofs served for any checkpointed size verify against that checkpoint.
    let latest = log.latest_checkpoint().await.unwrap().unwrap();
    let head = Checkpoint::open(&latest.note, &vk).unwrap();
    for old in &notes {
        let p = log.consistency_proof(old.size, 6).await.unwrap();
        verify_consistency(old.size, 6, &old.root, &head.root, &p).unwrap();
    }
    let p = log.inclusion_proof(2, 4).await.unwrap();
    let leaf = leaf_hash(log.list_entries(2, 1).await.unwrap()[0].entry.as_bytes());
    hallmark_audit::verify_inclusion(2, 4, &leaf, &p, &notes[3].root).unwrap();
    for (i, n) in [(6, 6), (0, 7), (5, 3)] {
        assert!(matches!(
            log.inclusion_proof(i, n).await,
            Err(StoreError::OutOfRange(_))
        ));
    }
    for (o, n) in [(0, 3), (4, 3), (2, 7)] {
        assert!(matches!(
            log.consistency_proof(o, n).await,
            Err(StoreError::OutOfRange(_))
        ));
    }
    assert!(matches!(
        log.record_decision(&decision("no-such-verification", 9))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let page = log.list_entries(4, 10).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[1].body["kind"], "key_created");
    assert_eq!(page[1].seq, 6);
}

async fn two_pools_append_one_log(ctx: Ctx) {
    // Two stores (pools) and two sequencers on one database: what two processes do.
    let a = start(&ctx.store).await;
    let other = Store::connect(&ctx.url).await.unwrap();
    let b = start(&other).await;
    let v = verification(&new_id());
    ctx.store.insert_verification(&v).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let log = if i % 2 == 0 { a.clone() } else { b.clone() };
        let d = decision(&v.id, i);
        tasks.push(tokio::spawn(async move { log.record_decision(&d).await }));
    }
    let vk = a.verifier();
    let mut seen = Vec::new();
    for t in tasks {
        let (rec, ap) = t.await.unwrap().unwrap();
        assert_eq!(rec.audit_seq, ap.leaf_index + 1);
        ap.receipt().verify(&vk).unwrap();
        seen.push(ap.leaf_index);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..60).collect::<Vec<u64>>());
    let r = b.verify().await.unwrap();
    assert!(r.valid, "{r:?}");
    assert_eq!(r.tree_size, 60);
    // b serves proofs over leaves a appended.
    let p = b.consistency_proof(1, 60).await.unwrap();
    let first = a.checkpoint_at(1).await.unwrap();
    if let Some(first) = first {
        let c1 = Checkpoint::open(&first.note, &vk).unwrap();
        let head =
            Checkpoint::open(&b.latest_checkpoint().await.unwrap().unwrap().note, &vk).unwrap();
        verify_consistency(1, 60, &c1.root, &head.root, &p).unwrap();
    }
    other.close().await;
}

async fn idempotency_across_pools(ctx: Ctx) {
    // Twenty calls with one idempotency key through two sequencers (two processes' worth):
    // one records, every other gets the same decisions and receipts.
    let a = start(&ctx.store).await;
    let other = Store::connect(&ctx.url).await.unwrap();
    let b = start(&other).await;
    let v = verification(&new_id());
    ctx.store.insert_verification(&v).await.unwrap();
    let ds = vec![decision(&v.id, 1), decision(&v.id, 2)];
    let key = |scope: &str, fp: &str| IdempotencyKey {
        scope: scope.into(),
        key: "order-1".into(),
        fingerprint: fp.into(),
    };
    let mut tasks = Vec::new();
    for i in 0..20 {
        let log = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (ds, k) = (ds.clone(), key("key-1", "fp-1"));
        tasks.push(tokio::spawn(async move {
            log.record_decisions(&ds, Some(k)).await
        }));
    }
    let mut outs = Vec::new();
    for t in tasks {
        outs.push(t.await.unwrap().unwrap());
    }
    let shown = |o: &RecordedDecisions| {
        o.decisions
            .iter()
            .map(|(d, a)| (d.clone(), serde_json::to_value(a.receipt()).unwrap()))
            .collect::<Vec<_>>()
    };
    let fresh: Vec<_> = outs.iter().filter(|o| !o.replayed).collect();
    assert_eq!(fresh.len(), 1);
    for o in &outs {
        assert_eq!(shown(o), shown(fresh[0]));
    }
    assert_eq!(a.verify().await.unwrap().tree_size, 2);
    assert!(matches!(
        b.record_decisions(&ds, Some(key("key-1", "fp-2"))).await,
        Err(StoreError::IdempotencyConflict(_))
    ));
    let theirs = a
        .record_decisions(&ds, Some(key("key-2", "fp-1")))
        .await
        .unwrap();
    assert!(!theirs.replayed);
    assert_eq!(theirs.decisions[0].0.audit_seq, 3);
    // All or none: an unknown verification records nothing of the call.
    let bad = vec![decision(&v.id, 3), decision("no-such-verification", 4)];
    assert!(matches!(
        a.record_decisions(&bad, None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        a.record_decisions(&[], None).await,
        Err(StoreError::Invalid(_))
    ));
    let r = b.verify().await.unwrap();
    assert!(r.valid, "{r:?}");
    assert_eq!(r.tree_size, 4);
    other.close().await;
}

async fn expect(log: &AuditLog, seq: u64, reason: LogFailureReason) {
    let r = log.verify().await.unwrap();
    let f = r
        .first_failure
        .clone()
        .unwrap_or_else(|| panic!("valid: {r:?}"));
    assert_eq!((f.seq, f.reason), (seq, reason), "{r:#?}");
}

async fn tampering_is_located(ctx: Ctx) {
    let s = &ctx.store;
    let log = start(s).await;
    let v = verification(&new_id());
    s.insert_verification(&v).await.unwrap();
    for i in 0..6 {
        log.record_decision(&decision(&v.id, i)).await.unwrap();
    }
    assert!(log.verify().await.unwrap().valid);
    let entries = log.list_entries(0, 10).await.unwrap();
    let original = entries[2].entry.clone();
    let edited = original.replace("\"action\":\"block\"", "\"action\":\"allow\"");
    assert_ne!(original, edited);
    let q = |t: &str| format!("'{}'", t.replace('\'', "''"));

    // 1. The decisions row alone.
    s.execute_raw("UPDATE decisions SET action = 'allow' WHERE audit_seq = 3")
        .await
        .unwrap();
    expect(&log, 3, LogFailureReason::RecordMismatch).await;
    s.execute_raw("UPDATE decisions SET action = 'block' WHERE audit_seq = 3")
        .await
        .unwrap();
    assert!(log.verify().await.unwrap().valid);

    // 2. The leaf alone, leaf hash kept.
    s.execute_raw(&format!(
        "UPDATE audit_leaves SET body = {} WHERE leaf_index = 2",
        q(&edited)
    ))
    .await
    .unwrap();
    expect(&log, 3, LogFailureReason::LeafHashMismatch).await;

    // 3. Leaf, leaf hash and decisions row, all consistent: only the signed
    //    checkpoints (key outside the database) still tell, and they name seq 3.
    s.execute_raw(&format!(
        "UPDATE audit_leaves SET leaf_hash = '{}' WHERE leaf_index = 2; \
         UPDATE decisions SET action = 'allow' WHERE audit_seq = 3",
        hex::encode(leaf_hash(edited.as_bytes()))
    ))
    .await
    .unwrap();
    let r = log.verify().await.unwrap();
    let f = r.first_failure.unwrap();
    assert_eq!(f.reason, LogFailureReason::CheckpointRoot, "{f:?}");
    assert_eq!((f.seq, f.range_end), (3, Some(3)));
    // A process started now refuses to sign over the rewritten history.
    let restarted = start(s).await;
    let refused = restarted.record_decision(&decision(&v.id, 9)).await;
    assert!(
        matches!(refused, Err(StoreError::LogUnavailable(_))),
        "{refused:?}"
    );
    s.execute_raw(&format!(
        "UPDATE audit_leaves SET body = {}, leaf_hash = '{}' WHERE leaf_index = 2; \
         UPDATE decisions SET action = 'block' WHERE audit_seq = 3",
        q(&original),
        hex::encode(leaf_hash(original.as_bytes()))
    ))
    .await
    .unwrap();
    assert!(log.verify().await.unwrap().valid);

    // 4. A checkpoint re-signed with another key.
    let cp = log.checkpoint_at(4).await.unwrap().unwrap();
    let body = Checkpoint::parse(log.verifier().open(&cp.note).unwrap()).unwrap();
    let forged = body.sign(&signer(8)).unwrap();
    s.execute_raw(&format!(
        "UPDATE audit_checkpoints SET note = {} WHERE tree_size = 4",
        q(&forged)
    ))
    .await
    .unwrap();
    expect(&log, 4, LogFailureReason::CheckpointSignature).await;
    s.execute_raw(&format!(
        "UPDATE audit_checkpoints SET note = {} WHERE tree_size = 4",
        q(&cp.note)
    ))
    .await
    .unwrap();

    // 5. The tail removed (leaf and row), and a leaf slipped in without a checkpoint.
    s.execute_raw("DELETE FROM audit_leaves WHERE leaf_index = 5")
        .await
        .unwrap();
    let f = log.verify().await.unwrap().first_failure.unwrap();
    assert_eq!(f.seq, 6, "{f:?}");
    assert!(
        matches!(
            f.reason,
            LogFailureReason::MissingLeaves | LogFailureReason::RecordMismatch
        ),
        "{f:?}"
    );
    s.execute_raw(&format!(
        "INSERT INTO audit_leaves (leaf_index, leaf_hash, body, created_at) VALUES (5, NULL, {}, 'x'); \
         INSERT INTO audit_leaves (leaf_index, leaf_hash, body, created_at) VALUES (6, NULL, {}, 'x')",
        q(&entries[5].entry),
        q(&entries[5].entry.replace("\"seq\":6", "\"seq\":7"))
    ))
    .await
    .unwrap();
    let r = log.verify().await.unwrap();
    let f = r.first_failure.unwrap();
    assert_eq!(f.seq, 7, "{f:?}");
}

/// The migration turns a hash chain written by the previous schema into the first
/// leaves; the sequencer re-verifies the chain, signs a first checkpoint over it,
/// and appends after it.
async fn migration_adopts_hash_chain(backend: Backend) {
    let (url, pg, _dir) = match backend {
        Backend::Postgres => {
            let db = TestDatabase::postgres().await.unwrap();
            (db.url().to_string(), Some(db), None)
        }
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (fresh_sqlite_url(dir.path()), None, Some(dir))
        }
    };
    let old = Store::connect_at_version(&url, 20250101000001)
        .await
        .unwrap();
    // Raw SQL: the current insert also fills columns this schema does not have yet.
    let v = verification(&new_id());
    old.execute_raw(&format!(
        "INSERT INTO verifications (id, created_at, sha256, media_type, asset_id, requested_by, report) \
         VALUES ('{}', '{}', '{}', 'image/png', NULL, 'key-1', \
         '{{\"verdict\": {{\"label\": \"tampered\"}}, \"detection\": {{\"band\": \"inconclusive\"}}}}')",
        v.id,
        hallmark_audit::format_timestamp(v.created_at),
        v.sha256
    ))
    .await
    .unwrap();
    let mut chain: Vec<AuditEntry> = Vec::new();
    for i in 0..5u64 {
        let id = new_id();
        let ts = now();
        let e = AuditEntry::new(
            chain.last(),
            EntryBody::at(
                ts,
                "decision",
                "key-1",
                json!({"id": id, "verification_id": v.id, "action": "label",
                       "policy": "p", "reason": format!("r{i}"), "decided_by": "key-1"}),
            ),
        )
        .unwrap();
        let st = e.to_stored();
        old.execute_raw(&format!(
            "INSERT INTO audit_entries (seq, prev_hash, entry_hash, body, created_at) \
             VALUES ({}, '{}', '{}', '{}', '{}'); \
             INSERT INTO decisions (id, verification_id, action, policy, reason, decided_by, created_at, audit_seq) \
             VALUES ('{id}', '{}', 'label', 'p', 'r{i}', 'key-1', '{}', {})",
            st.seq,
            st.prev_hash,
            st.entry_hash,
            st.body.replace('\'', "''"),
            hallmark_audit::format_timestamp(ts),
            v.id,
            hallmark_audit::format_timestamp(ts),
            st.seq
        ))
        .await
        .unwrap();
        chain.push(e);
    }
    old.close().await;

    let s = Store::connect(&url).await.unwrap();
    // The listing migration copied the verdict and band out of the stored report.
    let listed = s
        .list_verifications(
            &VerificationFilter {
                verdicts: vec!["tampered".into()],
                bands: vec!["inconclusive".into()],
                decided: Some(true),
                ..VerificationFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].decisions),
        (v.id.as_str(), 5)
    );
    let log = start(&s).await;
    let r = log.verify().await.unwrap();
    assert!(r.valid, "{r:#?}");
    assert_eq!((r.tree_size, r.checkpoints_checked), (5, 1));
    let leaves = log.list_entries(0, 100).await.unwrap();
    for (leaf, e) in leaves.iter().zip(&chain) {
        assert_eq!(leaf.entry, e.to_stored().body, "nothing lost");
        assert_eq!(leaf.seq, e.seq);
        assert_eq!(
            leaf.leaf_hash.as_deref(),
            Some(hex::encode(leaf_hash(leaf.entry.as_bytes())).as_str())
        );
    }
    let (rec, a) = log.record_decision(&decision(&v.id, 9)).await.unwrap();
    assert_eq!((rec.audit_seq, a.leaf_index), (6, 5));
    assert!(log.verify().await.unwrap().valid);
    // Restarting adopts nothing twice.
    let again = start(&s).await;
    assert_eq!(
        again.latest_checkpoint().await.unwrap().unwrap().tree_size,
        6
    );
    assert_eq!(again.verify().await.unwrap().checkpoints_checked, 2);
    s.close().await;
    if let Some(db) = pg {
        db.drop_database().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_adopts_hash_chain_sqlite() {
    migration_adopts_hash_chain(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_adopts_hash_chain_postgres() {
    migration_adopts_hash_chain(Backend::Postgres).await;
}
