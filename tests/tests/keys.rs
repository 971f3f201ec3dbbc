//! Key management over HTTP and the CLI (issue 20): `/v1/keys` for the `admin` scope, expiry,
//! last use, revocation that takes effect on the very next request, rotation, and the key
//! events in the audit log (issue 16). Both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hallmark_tests::{Backend, Server};
use serde_json::{json, Value};

/// Key events on (the harness turns them off for the decision-log tests), detectors off.
const ENV: [(&str, &str); 2] = [
    ("HALLMARK__AUDIT__KEY_EVENTS", "true"),
    ("HALLMARK__DETECTORS__ENABLED", "false"),
];

/// 404 `not_found` means the key authenticated (the verification does not exist); 401 means
/// it did not.
fn probe(s: &Server, key: &str) -> u16 {
    s.get(
        "/v1/verifications/00000000-0000-7000-8000-000000000000",
        Some(key),
    )
    .status
}

fn create(s: &Server, body: &Value) -> Value {
    let r = s.post_json("/v1/keys", Some(&s.admin_key), body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn lifecycle(backend: Backend) {
    let s = Server::start(backend, &ENV).unwrap();
    let admin = s.admin_key.clone();

    // The bootstrap key holds `admin`; its use is recorded.
    let list = s.get("/v1/keys", Some(&admin));
    assert_eq!(list.status, 200, "{}", String::from_utf8_lossy(&list.body));
    let keys = list.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["name"], "bootstrap-admin");
    assert!(keys[0]["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("admin")));
    assert!(keys[0]["last_used_at"].is_string(), "{keys:#?}");
    assert!(keys[0].get("key_hash").is_none() && keys[0].get("secret").is_none());

    // Only `admin` manages keys; scope is checked before the body.
    let verifier = create(&s, &json!({"name": "v", "scopes": ["verify"]}));
    let vkey = verifier["secret"].as_str().unwrap().to_owned();
    assert!(vkey.starts_with("hm_"));
    assert_eq!(probe(&s, &vkey), 404);
    s.get("/v1/keys", Some(&vkey))
        .assert_problem(403, "insufficient_scope");
    s.post_raw("/v1/keys", Some(&vkey), "application/json", b"{not json")
        .assert_problem(403, "insufficient_scope");

    // Revocation takes effect on the very next request, every time (no cache in between).
    for i in 0..10 {
        let k = create(&s, &json!({"name": format!("r{i}"), "scopes": ["verify"]}));
        let secret = k["secret"].as_str().unwrap();
        assert_eq!(probe(&s, secret), 404);
        let r = s.post_json(
            &format!("/v1/keys/{}/revoke", k["id"].as_str().unwrap()),
            Some(&admin),
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.json()["revoked_at"].is_string());
        s.get(
            "/v1/verifications/00000000-0000-7000-8000-000000000000",
            Some(secret),
        )
        .assert_problem(401, "unauthorized");
    }

    // Rotation: the old key stops at once, the new one has the same name and scopes.
    let r = s.post_json(
        &format!("/v1/keys/{}/rotate", verifier["id"].as_str().unwrap()),
        Some(&admin),
        &json!({}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let rot = r.json();
    let new_secret = rot["new"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(rot["new"]["name"], "v");
    assert_eq!(rot["new"]["scopes"], json!(["verify"]));
    assert_eq!(probe(&s, &vkey), 401);
    assert_eq!(probe(&s, &new_secret), 404);
    // With a grace period both work until the old one expires.
    let r = s.post_json(
        &format!("/v1/keys/{}/rotate", rot["new"]["id"].as_str().unwrap()),
        Some(&admin),
        &json!({"grace_seconds": 600}),
    );
    assert_eq!(r.status, 201);
    let graced = r.json();
    assert!(graced["old"]["expires_at"].is_string());
    assert_eq!(probe(&s, &new_secret), 404);
    assert_eq!(probe(&s, graced["new"]["secret"].as_str().unwrap()), 404);

    // Expiry.
    let short = create(
        &s,
        &json!({"name": "short", "scopes": ["verify"], "expires_in_seconds": 1}),
    );
    let short_secret = short["secret"].as_str().unwrap();
    assert!(short["expires_at"].is_string());
    assert_eq!(probe(&s, short_secret), 404);
    std::thread::sleep(std::time::Duration::from_millis(1300));
    assert_eq!(probe(&s, short_secret), 401);

    // Bad input: stable codes, never a 500.
    for (body, code) in [
        (json!({"name": "x", "scopes": ["root"]}), "invalid_request"),
        (json!({"name": "x", "scopes": []}), "invalid_request"),
        (json!({"name": "", "scopes": ["verify"]}), "invalid_request"),
        (
            json!({"name": "x", "scopes": ["verify"], "expires_in_seconds": 0}),
            "invalid_request",
        ),
        (
            json!({"name": "x", "scopes": ["verify"], "extra": 1}),
            "invalid_request",
        ),
    ] {
        s.post_json("/v1/keys", Some(&admin), &body)
            .assert_problem(400, code);
    }
    s.post_json("/v1/keys/not-a-uuid/revoke", Some(&admin), &json!({}))
        .assert_problem(400, "invalid_request");
    s.post_json(
        "/v1/keys/00000000-0000-7000-8000-000000000000/revoke",
        Some(&admin),
        &json!({}),
    )
    .assert_problem(404, "not_found");
    s.post_json(
        &format!("/v1/keys/{}/rotate", verifier["id"].as_str().unwrap()),
        Some(&admin),
        &json!({}),
    )
    .assert_problem(404, "not_found");
    s.post_json(
        &format!("/v1/keys/{}/rotate", rot["new"]["id"].as_str().unwrap()),
        Some(&admin),
        &json!({"grace_seconds": 99999999}),
    )
    .assert_problem(400, "invalid_request");
    s.get("/v1/keys/x/revoke", Some(&admin))
        .assert_problem(405, "method_not_allowed");

    // The CLI: list, revoke (the next HTTP request fails), rotate.
    let out = s.cli_env(
        &["keys", "create", "--scopes", "verify", "--name", "test"],
        &ENV,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let out = s.cli_env(&["keys", "list", "--json"], &ENV);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let cli_id = listed.iter().find(|k| k["name"] == "test").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(probe(&s, &cli_key), 404);
    let out = s.cli_env(&["keys", "rotate", &cli_id], &ENV);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(probe(&s, &cli_key), 401);
    assert_eq!(probe(&s, &rotated), 404);
    let out = s.cli_env(&["keys", "list"], &ENV);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table.contains("LAST USED") && table.contains("bootstrap-admin"),
        "{table}"
    );
    let rotated_id = s.get("/v1/keys", Some(&admin)).json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = s.cli_env(&["keys", "revoke", &rotated_id], &ENV);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(probe(&s, &rotated), 401);
    let out = s.cli_env(&["keys", "revoke", "nope"], &ENV);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_request"));
    let all = s.get("/v1/keys?include_revoked=true", Some(&admin)).json();
    assert!(
        all["keys"].as_array().unwrap().len()
            > s.get("/v1/keys", Some(&admin)).json()["keys"]
                .as_array()
                .unwrap()
                .len()
    );

    // Every creation, revocation and rotation is a leaf; no secret is; the log verifies.
    let entries = s.get("/v1/audit/entries?limit=1000", Some(&admin)).json();
    let entries = entries["entries"].as_array().unwrap();
    let kinds: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            let body: Value = serde_json::from_str(e["entry"].as_str().unwrap()).unwrap();
            (
                body["kind"].as_str().unwrap().to_owned(),
                body["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let count = |k: &str| kinds.iter().filter(|(kind, _)| kind == k).count();
    assert_eq!(kinds[0], ("key.created".to_owned(), "bootstrap".to_owned()));
    // bootstrap + verifier + 10 revoked + short + the CLI's key.
    assert_eq!(count("key.created"), 14, "{kinds:?}");
    assert_eq!(count("key.revoked"), 11, "{kinds:?}");
    assert_eq!(count("key.rotated"), 3, "{kinds:?}");
    for kind in ["key.created", "key.rotated", "key.revoked"] {
        assert!(
            kinds.iter().any(|(k, a)| k == kind && a == "cli"),
            "{kinds:?}"
        );
    }
    for e in entries {
        assert!(!e["entry"].as_str().unwrap().contains("hm_"), "{e}");
    }
    let v = s.get("/v1/audit/verify", Some(&admin)).json();
    assert_eq!(v["valid"], true, "{v:#}");
}

#[test]
fn key_management_on_sqlite() {
    lifecycle(Backend::Sqlite);
}

#[test]
fn key_management_on_postgres() {
    lifecycle(Backend::Postgres);
}

/// Two instances on one database: a key revoked through one fails on the other at once.
#[test]
fn revocation_is_immediate_on_every_instance() {
    let a = Server::start(Backend::Postgres, &ENV).unwrap();
    let b = Server::start_on(&a.database_url, &ENV).unwrap();
    for i in 0..5 {
        let r = a.post_json(
            "/v1/keys",
            Some(&a.admin_key),
            &json!({"name": format!("k{i}"), "scopes": ["verify"]}),
        );
        assert_eq!(r.status, 201);
        let k = r.json();
        let secret = k["secret"].as_str().unwrap();
        assert_eq!(probe(&b, secret), 404);
        let r = a.post_json(
            &format!("/v1/keys/{}/revoke", k["id"].as_str().unwrap()),
            Some(&a.admin_key),
            &json!({}),
        );
        assert_eq!(r.status, 200);
        assert_eq!(probe(&b, secret), 401);
    }
}
