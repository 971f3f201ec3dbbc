//! Store tests against the real services: every test body runs once on a
//! fresh PostgreSQL database and once on a fresh SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;

use serde_json::json;

use crate::testing::{fresh_sqlite_url, TestDatabase};
use crate::*;

struct Ctx {
    store: Store,
    url: String,
}

/// Runs `body` against a fresh database of `backend`, then cleans up (also
/// when the body panics) and re-raises the panic.
async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (url, pg, dir) = match backend {
        Backend::Postgres => {
            let db = TestDatabase::postgres().await.unwrap();
            (db.url().to_string(), Some(db), None)
        }
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            // nested, not yet existing directory: connect must create it
            let url = fresh_sqlite_url(&dir.path().join("nested/data"));
            (url, None, Some(dir))
        }
    };
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), backend);
    let outcome = tokio::spawn(body(Ctx {
        store: store.clone(),
        url: url.clone(),
    }))
    .await;
    store.close().await;
    if let Some(db) = pg {
        db.drop_database().await.unwrap();
    }
    drop(dir);
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::run(crate::Backend::Postgres, super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::run(crate::Backend::Sqlite, super::$name).await;
            }
        }
    )*};
}

both_backends!(
    migrations_are_idempotent,
    api_key_round_trip,
    asset_round_trip_and_conflicts,
    manifest_round_trip,
    verification_round_trip,
    decisions_append_verified_chain,
    verify_spans_multiple_pages,
    tampering_is_located,
    concurrent_decisions_form_valid_chain,
);

fn sha(n: u8) -> String {
    hex_of(&[n; 32])
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn asset(id: &str, payload: Option<&str>, out: &str) -> AssetRecord {
    AssetRecord {
        id: id.to_string(),
        created_at: now(),
        media_type: "image/png".into(),
        input_sha256: None,
        output_sha256: out.to_string(),
        watermark_payload: payload.map(str::to_string),
        manifest_label: Some(format!("urn:c2pa:{id}")),
        generator: "hallmark-gen".into(),
        model: "tiny-diffusion".into(),
        model_version: "1.0.0".into(),
        digital_source_type:
            "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia".into(),
        created_by: "key-1".into(),
        content_fingerprint: None,
    }
}

fn verification(id: &str) -> VerificationRecord {
    VerificationRecord {
        id: id.to_string(),
        created_at: now(),
        sha256: sha(7),
        media_type: "image/jpeg".into(),
        asset_id: None,
        requested_by: "key-1".into(),
        report: json!({"verdict": "synthetic", "score": 0.93, "signals": ["watermark", "c2pa"], "nested": {"ü": [1, 2]}}),
    }
}

fn decision(vid: &str, i: usize) -> NewDecision {
    NewDecision {
        verification_id: vid.to_string(),
        action: "block".into(),
        policy: "default-v1".into(),
        reason: format!("reason #{i} — ünïcödé"),
        decided_by: format!("key-{}", i % 3),
    }
}

async fn migrations_are_idempotent(ctx: Ctx) {
    // connect twice more: already-applied migrations are skipped
    let again = Store::connect(&ctx.url).await.unwrap();
    again.ping().await.unwrap();
    assert_eq!(again.count_api_keys().await.unwrap(), 0);
    let third = Store::connect(&ctx.url).await.unwrap();
    third.ping().await.unwrap();
    let report = third.verify_audit_chain().await.unwrap();
    assert!(report.valid);
    assert_eq!(report.entries_checked, 0);
    assert_eq!(third.audit_head().await.unwrap(), None);
    again.close().await;
    third.close().await;
    ctx.store.ping().await.unwrap();
}

async fn api_key_round_trip(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(s.count_api_keys().await.unwrap(), 0);
    let new = NewApiKey {
        id: new_id(),
        name: "admin".into(),
        key_hash: sha(1),
        scopes: vec!["admin".into(), "generate".into(), "verify".into()],
    };
    let rec = s.create_api_key(&new).await.unwrap();
    assert_eq!(rec.scopes, new.scopes);
    let found = s.find_api_key_by_hash(&sha(1)).await.unwrap().unwrap();
    assert_eq!(found, rec);
    assert!(found.has_scope("verify"));
    assert!(!found.has_scope("decide"));
    assert_eq!(s.count_api_keys().await.unwrap(), 1);
    assert!(s.find_api_key_by_hash(&sha(2)).await.unwrap().is_none());

    // duplicate hash and duplicate id conflict
    let dup_hash = NewApiKey {
        id: new_id(),
        ..new.clone()
    };
    assert!(matches!(
        s.create_api_key(&dup_hash).await,
        Err(StoreError::Conflict(_))
    ));
    let dup_id = NewApiKey {
        key_hash: sha(3),
        ..new.clone()
    };
    assert!(matches!(
        s.create_api_key(&dup_id).await,
        Err(StoreError::Conflict(_))
    ));
    let bad_scope = NewApiKey {
        id: new_id(),
        key_hash: sha(4),
        scopes: vec!["a,b".into()],
        ..new.clone()
    };
    assert!(matches!(
        s.create_api_key(&bad_scope).await,
        Err(StoreError::Invalid(_))
    ));
    // empty scopes round-trip as empty
    let none = NewApiKey {
        id: new_id(),
        key_hash: sha(5),
        scopes: vec![],
        name: "none".into(),
    };
    s.create_api_key(&none).await.unwrap();
    let got = s.find_api_key_by_hash(&sha(5)).await.unwrap().unwrap();
    assert!(got.scopes.is_empty());

    // revocation hides the key from lookups
    s.revoke_api_key(&rec.id).await.unwrap();
    s.revoke_api_key(&rec.id).await.unwrap();
    assert!(s.find_api_key_by_hash(&sha(1)).await.unwrap().is_none());
    let revoked = s.get_api_key(&rec.id).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(matches!(
        s.revoke_api_key("nope").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.count_api_keys().await.unwrap(), 2);
}

async fn asset_round_trip_and_conflicts(ctx: Ctx) {
    let s = &ctx.store;
    let mut a = asset(&new_id(), Some("0123456789abcdef"), &sha(9));
    a.input_sha256 = Some(sha(8));
    // The content fingerprint (content binding) round-trips as stored.
    a.content_fingerprint = Some("i1:300:200:1.000000:0.0000:128:85:AAAA".into());
    s.insert_asset(&a).await.unwrap();
    assert_eq!(s.get_asset(&a.id).await.unwrap().unwrap(), a);
    assert_eq!(
        s.find_asset_by_payload("0123456789abcdef").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        s.find_asset_by_payload("0123456789ABCDEF").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        s.find_asset_by_output_sha256(&sha(9)).await.unwrap(),
        Some(a.clone())
    );
    assert!(s.get_asset("missing").await.unwrap().is_none());
    assert!(s
        .find_asset_by_payload("ffffffffffffffff")
        .await
        .unwrap()
        .is_none());
    assert!(s
        .find_asset_by_output_sha256(&sha(10))
        .await
        .unwrap()
        .is_none());

    // unique watermark payload
    let b = asset(&new_id(), Some("0123456789abcdef"), &sha(11));
    assert!(matches!(
        s.insert_asset(&b).await,
        Err(StoreError::Conflict(_))
    ));
    // duplicate id
    let c = asset(&a.id, Some("1111111111111111"), &sha(11));
    assert!(matches!(
        s.insert_asset(&c).await,
        Err(StoreError::Conflict(_))
    ));
    // several assets without payload are fine (NULLs are distinct)
    let d = asset(&new_id(), None, &sha(12));
    let e = asset(&new_id(), None, &sha(12));
    s.insert_asset(&d).await.unwrap();
    s.insert_asset(&e).await.unwrap();
    assert_eq!(s.get_asset(&d.id).await.unwrap().unwrap(), d);
    // 32-bit (audio) payloads: 8 hex digits, found by lookup, unique too
    let f = asset(&new_id(), Some("00c0ffee"), &sha(14));
    s.insert_asset(&f).await.unwrap();
    assert_eq!(
        s.find_asset_by_payload("00C0FFEE").await.unwrap().unwrap(),
        f
    );
    let g = asset(&new_id(), Some("00c0ffee"), &sha(15));
    assert!(matches!(
        s.insert_asset(&g).await,
        Err(StoreError::Conflict(_))
    ));
    // validation
    for p in ["XYZ", "00c0ffe", "00c0ffee1", "00C0FFEE"] {
        let bad = asset(&new_id(), Some(p), &sha(13));
        assert!(
            matches!(s.insert_asset(&bad).await, Err(StoreError::Invalid(_))),
            "{p}"
        );
    }
    let bad = asset(&new_id(), Some("XYZ"), &sha(13));
    assert!(matches!(
        s.insert_asset(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    let bad = asset(&new_id(), None, "abc");
    assert!(matches!(
        s.insert_asset(&bad).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn manifest_round_trip(ctx: Ctx) {
    let s = &ctx.store;
    let a = asset(&new_id(), Some("00000000000000aa"), &sha(1));
    s.insert_asset(&a).await.unwrap();
    let m = ManifestRecord {
        label: "urn:c2pa:1234".into(),
        asset_id: a.id.clone(),
        format: "application/c2pa".into(),
        store_bytes: (0..=255u8).chain(0..=255u8).collect(),
        created_at: now(),
    };
    s.insert_manifest(&m).await.unwrap();
    assert_eq!(s.get_manifest(&m.label).await.unwrap().unwrap(), m);
    assert!(s.get_manifest("urn:c2pa:none").await.unwrap().is_none());
    assert!(matches!(
        s.insert_manifest(&m).await,
        Err(StoreError::Conflict(_))
    ));
    let orphan = ManifestRecord {
        label: "urn:c2pa:orphan".into(),
        asset_id: "no-such-asset".into(),
        ..m.clone()
    };
    let r = s.insert_manifest(&orphan).await;
    assert!(matches!(r, Err(StoreError::InvalidReference(_))), "{r:?}");
}

async fn verification_round_trip(ctx: Ctx) {
    let s = &ctx.store;
    let v = verification(&new_id());
    s.insert_verification(&v).await.unwrap();
    assert_eq!(s.get_verification(&v.id).await.unwrap().unwrap(), v);
    let mut w = verification(&new_id());
    w.asset_id = Some("some-asset".into());
    w.report = json!([]);
    s.insert_verification(&w).await.unwrap();
    assert_eq!(s.get_verification(&w.id).await.unwrap().unwrap(), w);
    assert!(s.get_verification("missing").await.unwrap().is_none());
    assert!(matches!(
        s.insert_verification(&v).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn decisions_append_verified_chain(ctx: Ctx) {
    let s = &ctx.store;
    let v = verification(&new_id());
    s.insert_verification(&v).await.unwrap();
    let mut entries = Vec::new();
    for i in 0..5 {
        let (rec, entry) = s.record_decision(&decision(&v.id, i)).await.unwrap();
        assert_eq!(rec.audit_seq, i as u64 + 1);
        assert_eq!(entry.seq, rec.audit_seq);
        assert_eq!(entry.kind(), Some("decision"));
        assert_eq!(entry.actor(), Some(rec.decided_by.as_str()));
        assert_eq!(entry.timestamp(), Some(rec.created_at));
        let data = entry.data().unwrap();
        assert_eq!(data["id"], json!(rec.id));
        assert_eq!(data["verification_id"], json!(v.id));
        assert_eq!(data["action"], json!("block"));
        assert_eq!(s.get_decision(&rec.id).await.unwrap().unwrap(), rec);
        entries.push(entry);
    }
    assert_eq!(entries[0].prev_hash, "0".repeat(64));
    let listed = s.list_audit_entries(0, 100).await.unwrap();
    assert_eq!(listed, entries);
    let page = s.list_audit_entries(2, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
    assert!(s.list_audit_entries(5, 10).await.unwrap().is_empty());
    assert!(hallmark_audit::verify_chain(listed).valid);
    let stored = s.list_stored_audit_entries(0, 100).await.unwrap();
    assert_eq!(stored[1], entries[1].to_stored());

    let decisions = s.list_decisions_for_verification(&v.id).await.unwrap();
    assert_eq!(decisions.len(), 5);
    assert_eq!(s.audit_head().await.unwrap(), Some(entries[4].head()));

    let report = s.verify_audit_chain().await.unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, 5);
    assert_eq!(
        report.head_hash.as_deref(),
        Some(entries[4].entry_hash.as_str())
    );

    // unknown verification: NotFound, nothing appended
    let r = s
        .record_decision(&decision("no-such-verification", 9))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert_eq!(s.audit_head().await.unwrap().map(|h| h.seq), Some(5));

    // generic entries share the chain
    let e = s
        .append_audit_entry(EntryBody::new(
            "api_key.created",
            "admin",
            json!({"id": "k"}),
        ))
        .await
        .unwrap();
    assert_eq!(e.seq, 6);
    assert_eq!(e.prev_hash, entries[4].entry_hash);
    assert!(s.verify_audit_chain().await.unwrap().valid);
}

async fn verify_spans_multiple_pages(ctx: Ctx) {
    let s = &ctx.store;
    let n = u64::from(VERIFY_PAGE_SIZE) * 2 + 1;
    for i in 0..n {
        s.append_audit_entry(EntryBody::new("test", "tester", json!({"i": i})))
            .await
            .unwrap();
    }
    let report = s.verify_audit_chain().await.unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, n);
    assert_eq!(report.head_seq, Some(n));

    // tamper inside the second page
    let target = u64::from(VERIFY_PAGE_SIZE) + 17;
    s.execute_raw(&format!(
        "UPDATE audit_entries SET body = REPLACE(body, '\"actor\":\"tester\"', '\"actor\":\"mallory\"') WHERE seq = {target}"
    ))
    .await
    .unwrap();
    let report = s.verify_audit_chain().await.unwrap();
    let f = report.first_failure.unwrap();
    assert_eq!(f.seq, target);
    assert_eq!(f.reason, FailureReason::HashMismatch);
    assert_eq!(report.entries_checked, target - 1);
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Asserts the store's chain verification fails first at `seq` for `reason`.
async fn expect_failure(s: &Store, seq: u64, reason: FailureReason) {
    let report = s.verify_audit_chain().await.unwrap();
    assert!(!report.valid, "tampering not detected: {report:?}");
    let f = report.first_failure.unwrap();
    assert_eq!((f.seq, &f.reason), (seq, &reason), "{}", f.detail);
}

async fn tampering_is_located(ctx: Ctx) {
    let s = &ctx.store;
    let v = verification(&new_id());
    s.insert_verification(&v).await.unwrap();
    for i in 0..10 {
        s.record_decision(&decision(&v.id, i)).await.unwrap();
    }
    assert!(s.verify_audit_chain().await.unwrap().valid);
    let original = s.list_stored_audit_entries(0, 100).await.unwrap();
    let restore = |seq: u64| {
        let e = &original[seq as usize - 1];
        format!(
            "UPDATE audit_entries SET body = {}, entry_hash = {}, prev_hash = {} WHERE seq = {seq}",
            sql_str(&e.body),
            sql_str(&e.entry_hash),
            sql_str(&e.prev_hash)
        )
    };

    // 1. edit a body value (still canonical): hash mismatch at that seq
    let n = s
        .execute_raw(
            "UPDATE audit_entries SET body = REPLACE(body, '\"action\":\"block\"', '\"action\":\"allow\"') WHERE seq = 4",
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    expect_failure(s, 4, FailureReason::HashMismatch).await;
    s.execute_raw(&restore(4)).await.unwrap();
    assert!(s.verify_audit_chain().await.unwrap().valid);

    // 2. semantically neutral edit (whitespace): not canonical
    s.execute_raw(
        "UPDATE audit_entries SET body = REPLACE(body, '\"kind\":', '\"kind\": ') WHERE seq = 6",
    )
    .await
    .unwrap();
    expect_failure(s, 6, FailureReason::BodyNotCanonical).await;
    s.execute_raw(&restore(6)).await.unwrap();

    // 3. overwrite entry_hash
    s.execute_raw(&format!(
        "UPDATE audit_entries SET entry_hash = '{}' WHERE seq = 3",
        "0".repeat(64)
    ))
    .await
    .unwrap();
    expect_failure(s, 3, FailureReason::HashMismatch).await;
    s.execute_raw(&restore(3)).await.unwrap();

    // 4. overwrite prev_hash
    s.execute_raw(&format!(
        "UPDATE audit_entries SET prev_hash = '{}' WHERE seq = 8",
        "f".repeat(64)
    ))
    .await
    .unwrap();
    expect_failure(s, 8, FailureReason::PrevHashMismatch).await;
    s.execute_raw(&restore(8)).await.unwrap();

    // 5. forge body + recompute its hash: the next link breaks
    let mut forged = original[1].to_entry().unwrap();
    forged.body["data"]["action"] = json!("allow");
    forged.entry_hash = forged.compute_hash().unwrap();
    let fs = forged.to_stored();
    s.execute_raw(&format!(
        "UPDATE audit_entries SET body = {}, entry_hash = {} WHERE seq = 2",
        sql_str(&fs.body),
        sql_str(&fs.entry_hash)
    ))
    .await
    .unwrap();
    expect_failure(s, 3, FailureReason::PrevHashMismatch).await;
    s.execute_raw(&restore(2)).await.unwrap();
    assert!(s.verify_audit_chain().await.unwrap().valid);

    // 6. swap two rows' positions (seq 7 <-> 8)
    s.execute_raw("UPDATE audit_entries SET seq = 1000007 WHERE seq = 7")
        .await
        .unwrap();
    s.execute_raw("UPDATE audit_entries SET seq = 7 WHERE seq = 8")
        .await
        .unwrap();
    s.execute_raw("UPDATE audit_entries SET seq = 8 WHERE seq = 1000007")
        .await
        .unwrap();
    expect_failure(s, 7, FailureReason::SeqMismatchInBody).await;
    s.execute_raw("UPDATE audit_entries SET seq = 1000008 WHERE seq = 8")
        .await
        .unwrap();
    s.execute_raw("UPDATE audit_entries SET seq = 8 WHERE seq = 7")
        .await
        .unwrap();
    s.execute_raw("UPDATE audit_entries SET seq = 7 WHERE seq = 1000008")
        .await
        .unwrap();
    assert!(s.verify_audit_chain().await.unwrap().valid);

    // 7. delete a row in the middle
    let deleted = &original[4];
    s.execute_raw("DELETE FROM audit_entries WHERE seq = 5")
        .await
        .unwrap();
    expect_failure(s, 5, FailureReason::SeqGap { expected: 5 }).await;
    s.execute_raw(&format!(
        "INSERT INTO audit_entries (seq, prev_hash, entry_hash, body, created_at) \
         VALUES (5, {}, {}, {}, '2025-01-01T00:00:00.000Z')",
        sql_str(&deleted.prev_hash),
        sql_str(&deleted.entry_hash),
        sql_str(&deleted.body)
    ))
    .await
    .unwrap();
    assert!(s.verify_audit_chain().await.unwrap().valid);

    // 8. truncate the tail: caught via decisions.audit_seq
    s.execute_raw("DELETE FROM audit_entries WHERE seq >= 9")
        .await
        .unwrap();
    expect_failure(s, 9, FailureReason::SeqGap { expected: 9 }).await;

    // 9. garbage body
    s.execute_raw("UPDATE audit_entries SET body = 'not json' WHERE seq = 1")
        .await
        .unwrap();
    expect_failure(s, 1, FailureReason::Malformed).await;
    assert!(matches!(
        s.list_audit_entries(0, 10).await,
        Err(StoreError::Corrupt(_))
    ));
}

async fn concurrent_decisions_form_valid_chain(ctx: Ctx) {
    // Two independent stores (pools) on the same database, so that the
    // database-level lock is exercised, not only the in-process mutex.
    let a = ctx.store.clone();
    let b = Store::connect(&ctx.url).await.unwrap();
    let v = verification(&new_id());
    a.insert_verification(&v).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let d = decision(&v.id, i);
        tasks.push(tokio::spawn(async move { s.record_decision(&d).await }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        let (rec, entry) = t.await.unwrap().unwrap();
        assert_eq!(rec.audit_seq, entry.seq);
        seqs.push(entry.seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());

    let report = a.verify_audit_chain().await.unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, 20);
    assert_eq!(report.head_seq, Some(20));
    let entries = b.list_audit_entries(0, 100).await.unwrap();
    assert_eq!(entries.len(), 20);
    assert!(hallmark_audit::verify_chain(entries).valid);
    assert_eq!(
        a.list_decisions_for_verification(&v.id)
            .await
            .unwrap()
            .len(),
        20
    );
    b.close().await;
}

#[tokio::test]
async fn unsupported_urls_are_rejected() {
    for url in ["mysql://localhost/db", "http://x", "sqlite://", ""] {
        let r = Store::connect(url).await;
        assert!(
            matches!(r, Err(StoreError::UnsupportedUrl(_))),
            "{url}: {r:?}"
        );
    }
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let s = Store::connect("sqlite::memory:").await.unwrap();
    assert_eq!(s.backend(), Backend::Sqlite);
    let v = verification(&new_id());
    s.insert_verification(&v).await.unwrap();
    s.record_decision(&decision(&v.id, 1)).await.unwrap();
    assert!(s.verify_audit_chain().await.unwrap().valid);
}

#[tokio::test]
async fn sqlite_relative_and_query_urls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c.db");
    let url = format!("sqlite://{}?cache=private", path.display());
    let s = Store::connect(&url).await.unwrap();
    s.ping().await.unwrap();
    assert!(path.exists());
    s.close().await;
}
