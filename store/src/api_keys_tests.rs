//! API key lifecycle on both backends: expiry, rotation (with and without grace), last use,
//! listing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Duration;

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

both!(key_lifecycle);

fn key(n: u8, expires_at: Option<chrono::DateTime<chrono::Utc>>) -> NewApiKey {
    NewApiKey {
        id: new_id(),
        name: format!("k{n}"),
        key_hash: format!("{n:02x}").repeat(32),
        scopes: vec!["verify".into()],
        expires_at,
    }
}

async fn key_lifecycle(ctx: Ctx) {
    let s = &ctx.store;
    // An expired key does not authenticate; one expiring later does.
    let past = s
        .create_api_key(&key(1, Some(now() - Duration::seconds(1))))
        .await
        .unwrap();
    assert!(s
        .find_api_key_by_hash(&past.key_hash)
        .await
        .unwrap()
        .is_none());
    let future = s
        .create_api_key(&key(2, Some(now() + Duration::hours(1))))
        .await
        .unwrap();
    let found = s
        .find_api_key_by_hash(&future.key_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, future);
    assert!(found.is_active_at(now()));
    assert!(!found.is_active_at(now() + Duration::hours(2)));

    // Last use only moves forward.
    let t1 = now();
    s.touch_api_key(&future.id, t1).await.unwrap();
    s.touch_api_key(&future.id, t1 - Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(
        s.get_api_key(&future.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(t1)
    );

    // Rotation without grace: the old key is revoked, the new one works, in one step.
    let (old, new) = s
        .rotate_api_key(&future.id, &key(3, None), None)
        .await
        .unwrap();
    assert!(old.revoked_at.is_some());
    assert!(s
        .find_api_key_by_hash(&future.key_hash)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .find_api_key_by_hash(&new.key_hash)
        .await
        .unwrap()
        .is_some());
    // A revoked key cannot be rotated again; nothing is inserted then.
    assert!(matches!(
        s.rotate_api_key(&future.id, &key(4, None), None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(s
        .find_api_key_by_hash(&key(4, None).key_hash)
        .await
        .unwrap()
        .is_none());

    // Rotation with grace: the old key keeps working until its new expiry.
    let grace = now() + Duration::minutes(5);
    let (old, newer) = s
        .rotate_api_key(&new.id, &key(5, None), Some(grace))
        .await
        .unwrap();
    assert_eq!(old.expires_at, Some(grace));
    assert!(old.revoked_at.is_none());
    assert!(s
        .find_api_key_by_hash(&new.key_hash)
        .await
        .unwrap()
        .is_some());
    assert!(s
        .find_api_key_by_hash(&newer.key_hash)
        .await
        .unwrap()
        .is_some());

    let active: Vec<String> = s
        .list_api_keys(false)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(active, ["k1", "k3", "k5"]);
    assert_eq!(s.list_api_keys(true).await.unwrap().len(), 4);
    s.delete_api_key(&newer.id).await.unwrap();
    assert!(s.get_api_key(&newer.id).await.unwrap().is_none());
}
