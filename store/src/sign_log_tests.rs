//! Signed assets with their manifests in one transaction, request idempotency records and
//! the start-up lock, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use crate::tests::{run, Ctx};
use crate::*;

macro_rules! both {
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

both!(
    signed_rows_are_all_or_nothing,
    request_keys,
    startup_lock_excludes
);

fn asset(id: &str, payload: &str) -> AssetRecord {
    AssetRecord {
        id: id.into(),
        created_at: now(),
        media_type: "image/png".into(),
        input_sha256: None,
        output_sha256: "ab".repeat(32),
        watermark_payload: Some(payload.into()),
        manifest_label: Some(format!("urn:c2pa:{id}")),
        generator: String::new(),
        model: "m".into(),
        model_version: String::new(),
        digital_source_type: "trainedAlgorithmicMedia".into(),
        created_by: "k".into(),
        content_fingerprint: None,
    }
}

fn manifest(label: &str, asset_id: &str) -> ManifestRecord {
    ManifestRecord {
        label: label.into(),
        asset_id: asset_id.into(),
        format: "image/png".into(),
        store_bytes: vec![1, 2, 3],
        created_at: now(),
    }
}

async fn signed_rows_are_all_or_nothing(ctx: Ctx) {
    let s = &ctx.store;
    s.insert_signed(
        &asset("a1", "0000000000000001"),
        &manifest("L1", "a1"),
        None,
    )
    .await
    .unwrap();
    assert!(s.get_manifest("L1").await.unwrap().is_some());
    // The manifest insert fails (its label exists): the asset is not written either.
    let err = s
        .insert_signed(
            &asset("a2", "0000000000000002"),
            &manifest("L1", "a2"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(s.get_asset("a2").await.unwrap().is_none());
    // Completing a key this request does not hold fails, and nothing is written.
    let k = RequestKey {
        api_key_id: "k".into(),
        route: "/v1/sign".into(),
        idem_key: "x".into(),
        fingerprint: "f".into(),
    };
    let resp = StoredResponse {
        meta: "{}".into(),
        body: vec![9],
    };
    let err = s
        .insert_signed(
            &asset("a3", "0000000000000003"),
            &manifest("L3", "a3"),
            Some((&k, &resp)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(s.get_asset("a3").await.unwrap().is_none());
    assert_eq!(s.count_rows("assets").await.unwrap(), 1);
}

async fn request_keys(ctx: Ctx) {
    let s = &ctx.store;
    let long_ago = now() - chrono::Duration::hours(1);
    let k = RequestKey {
        api_key_id: "k".into(),
        route: "/v1/sign".into(),
        idem_key: "idem".into(),
        fingerprint: "f1".into(),
    };
    let claim = |k: RequestKey| async move { s.claim_request_key(&k, long_ago, long_ago).await };
    assert_eq!(claim(k.clone()).await.unwrap(), Claim::Claimed);
    assert_eq!(claim(k.clone()).await.unwrap(), Claim::InProgress);
    let other = RequestKey {
        fingerprint: "f2".into(),
        ..k.clone()
    };
    assert_eq!(claim(other.clone()).await.unwrap(), Claim::Conflict);
    // Keys are per caller and route.
    let elsewhere = RequestKey {
        route: "/v1/generate".into(),
        ..k.clone()
    };
    assert_eq!(claim(elsewhere).await.unwrap(), Claim::Claimed);
    // Released: claimable again.
    s.release_request_key(&k).await.unwrap();
    assert_eq!(claim(k.clone()).await.unwrap(), Claim::Claimed);
    // Completed with its rows: replayed, and never released.
    let resp = StoredResponse {
        meta: "{\"a\":1}".into(),
        body: vec![0, 255, 7],
    };
    s.insert_signed(
        &asset("b1", "0000000000000011"),
        &manifest("M1", "b1"),
        Some((&k, &resp)),
    )
    .await
    .unwrap();
    assert_eq!(claim(k.clone()).await.unwrap(), Claim::Replay(resp.clone()));
    s.release_request_key(&k).await.unwrap();
    assert_eq!(claim(k.clone()).await.unwrap(), Claim::Replay(resp));
    // A pending claim older than `stale_before` is taken over, once.
    let t = RequestKey {
        idem_key: "stale".into(),
        ..k.clone()
    };
    assert_eq!(claim(t.clone()).await.unwrap(), Claim::Claimed);
    let later = now() + chrono::Duration::seconds(5);
    assert_eq!(
        s.claim_request_key(&t, later, long_ago).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(claim(t.clone()).await.unwrap(), Claim::InProgress);
    // Records created before `expire_before` are dropped.
    assert!(matches!(
        s.claim_request_key(&k, long_ago, later).await.unwrap(),
        Claim::Claimed
    ));
    // Bad keys are refused.
    let empty = RequestKey {
        idem_key: String::new(),
        ..k
    };
    assert!(matches!(claim(empty).await, Err(StoreError::Invalid(_))));
}

async fn startup_lock_excludes(ctx: Ctx) {
    let other = Store::connect(&ctx.url).await.unwrap();
    let held = ctx.store.startup_lock().await.unwrap();
    let waiter = tokio::spawn(async move {
        let l = other.startup_lock().await.unwrap();
        l.release().await.unwrap();
        other.close().await;
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "a second start-up lock was granted");
    held.release().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
}
