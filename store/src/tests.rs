//! Store tests against the real services: every test body runs once on a
//! fresh PostgreSQL database and once on a fresh SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;

use serde_json::json;

use crate::testing::{fresh_sqlite_url, TestDatabase};
use crate::*;

pub(crate) struct Ctx {
    pub(crate) store: Store,
    pub(crate) url: String,
}

/// Runs `body` against a fresh database of `backend`, then cleans up (also
/// when the body panics) and re-raises the panic.
pub(crate) async fn run<F, Fut>(backend: Backend, body: F)
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

pub(crate) fn verification(id: &str) -> VerificationRecord {
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

pub(crate) fn decision(vid: &str, i: usize) -> NewDecision {
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
        expires_at: None,
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
        expires_at: None,
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
    let signer = NoteSigner::generate("hallmark.test/memory").unwrap();
    let log = AuditLog::start(s.clone(), signer, AuditLogConfig::default())
        .await
        .unwrap();
    log.record_decision(&decision(&v.id, 1)).await.unwrap();
    assert!(log.verify().await.unwrap().valid);
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
