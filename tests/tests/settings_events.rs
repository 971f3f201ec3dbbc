//! The running policy in the audit log (issue 16): an instance that starts with a policy
//! different from the last one logged appends a `settings.changed` leaf (digests only, no
//! secrets); one that starts with the same policy appends nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hallmark_tests::{Backend, Server, TEST_WATERMARK_KEY};
use serde_json::Value;

const ENV: [(&str, &str); 2] = [
    ("HALLMARK__AUDIT__SETTINGS_EVENTS", "true"),
    ("HALLMARK__DETECTORS__ENABLED", "false"),
];

/// Bodies of every `settings.changed` entry, in log order, and the raw entry texts.
fn settings_entries(s: &Server, key: &str) -> (Vec<Value>, String) {
    let r = s.get("/v1/audit/entries?limit=1000", Some(key));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let raw = String::from_utf8_lossy(&r.body).into_owned();
    let entries = r.json()["entries"].as_array().unwrap().clone();
    let bodies = entries
        .iter()
        .map(|e| serde_json::from_str::<Value>(e["entry"].as_str().unwrap()).unwrap())
        .filter(|b| b["kind"] == "settings.changed")
        .collect();
    (bodies, raw)
}

#[test]
fn a_changed_policy_is_logged_once_per_change() {
    let a = Server::start(Backend::Postgres, &ENV).unwrap();
    let key = a.admin_key.clone();
    let (first, raw) = settings_entries(&a, &key);
    assert_eq!(first.len(), 1, "the first start logs its policy");
    let d0 = first[0]["data"]["digest"].as_str().unwrap().to_owned();
    assert_eq!(d0.len(), 64);
    assert!(first[0]["data"]["previous_digest"].is_null());
    assert_eq!(first[0]["actor"], "hallmark serve");
    let policy = &first[0]["data"]["policy"];
    assert_eq!(policy["signing"]["development_identity"], true);
    assert_eq!(
        policy["signing"]["certificate_chain_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    // No secret enters the log: not the watermark key, not an API key, not the database URL.
    assert!(!raw.contains(TEST_WATERMARK_KEY));
    assert!(!raw.contains(&key));
    assert!(!raw.contains("postgres://"));

    // Same policy (same data directory: same development certificate) -> nothing new.
    let data_dir = a.data.path().display().to_string();
    let mut same_env = ENV.to_vec();
    same_env.push(("HALLMARK__STORAGE__DATA_DIR", data_dir.as_str()));
    let b = Server::start_on(&a.database_url, &same_env).unwrap();
    let (after_b, _) = settings_entries(&b, &key);
    assert_eq!(after_b.len(), 1, "an unchanged policy is not logged again");

    // Another signing certificate (a fresh data directory makes a new development identity;
    // the log's own note key is shared) -> a new entry that names the previous digest.
    let log_key = a.data.path().join("audit-log.key").display().to_string();
    let mut other_env = ENV.to_vec();
    other_env.push(("HALLMARK__AUDIT__KEY_PATH", log_key.as_str()));
    let c = Server::start_on(&a.database_url, &other_env).unwrap();
    let (after_c, _) = settings_entries(&c, &key);
    assert_eq!(after_c.len(), 2, "a changed policy is logged");
    assert_eq!(after_c[1]["data"]["previous_digest"], d0.as_str());
    assert_ne!(after_c[1]["data"]["digest"], d0.as_str());
    assert_ne!(
        after_c[1]["data"]["policy"]["signing"]["certificate_chain_sha256"],
        policy["signing"]["certificate_chain_sha256"]
    );

    // The log still verifies with the new leaves in it.
    let v = c.get("/v1/audit/verify", Some(&key)).json();
    assert_eq!(v["valid"], true, "{v}");
}
