//! The audit log as a transparency log, over HTTP and the CLI, on SQLite and Postgres:
//! receipts verify offline, proofs and bad input, an insider's edits are named by
//! `GET /v1/audit/verify` and make `hallmark audit monitor` exit 1; two processes on one
//! Postgres form one log; SIGKILL loses no acknowledged decision.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Output;

use hallmark_tests::{Backend, Server};
use serde_json::{json, Value};

const NO_DETECTORS: [(&str, &str); 1] = [("HALLMARK__DETECTORS__ENABLED", "false")];

fn new_verification(s: &Server) -> String {
    let id = format!(
        "0190f000-0000-7000-8000-{:012x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 0xffff_ffff_ffff
    );
    s.execute_sql(&format!(
        "INSERT INTO verifications (id, created_at, sha256, media_type, asset_id, requested_by, report) \
         VALUES ('{id}', '2026-12-07T00:00:00.000Z', '{}', 'image/png', NULL, 'test', '{{}}')",
        "ab".repeat(32)
    ))
    .unwrap();
    id
}

fn decide(s: &Server, key: &str, vid: &str, action: &str) -> Value {
    let resp = s.post_json(
        "/v1/decisions",
        Some(key),
        &json!({"verification_id": vid, "action": action, "policy": "synthetic-media-v1", "reason": "declared AI"}),
    );
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    resp.json()
}

fn text(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn monitor(s: &Server, auditor: &str, state: &Path, vkey: &Path) -> Output {
    s.cli(&[
        "audit",
        "monitor",
        "--url",
        &s.base,
        "--api-key",
        auditor,
        "--state",
        state.to_str().unwrap(),
        "--verifier-key",
        vkey.to_str().unwrap(),
    ])
}

fn sql_str(t: &str) -> String {
    format!("'{}'", t.replace('\'', "''"))
}

fn transparency(backend: Backend) {
    let s = Server::start(backend, &NO_DETECTORS).unwrap();
    let vid = new_verification(&s);
    let moderator = s.create_key("moderate");
    let auditor = s.create_key("audit");
    let dir = s.data.path();

    // The verifier key, offline and over HTTP.
    let out = s.cli(&["audit", "public-key"]);
    assert!(out.status.success(), "{}", text(&out));
    let vkey = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let http = s.get("/v1/audit/public-key", Some(&auditor));
    assert_eq!(http.status, 200);
    assert_eq!(String::from_utf8_lossy(&http.body).trim(), vkey);
    let vkey_file = dir.join("log.vkey");
    std::fs::write(&vkey_file, &vkey).unwrap();
    s.get("/v1/audit/public-key", Some(&moderator))
        .assert_problem(403, "insufficient_scope");

    // Every acknowledged decision carries a receipt that verifies offline.
    let mut receipts = Vec::new();
    for action in ["label", "escalate", "remove"] {
        let d = decide(&s, &moderator, &vid, action);
        assert!(d["tlog_proof"]
            .as_str()
            .unwrap()
            .starts_with("c2sp.org/tlog-proof@v1\n"));
        let f = dir.join(format!("receipt-{}.json", d["audit_seq"]));
        std::fs::write(&f, serde_json::to_vec(&d).unwrap()).unwrap();
        let out = s.cli(&[
            "audit",
            "verify-receipt",
            f.to_str().unwrap(),
            "--verifier-key",
            vkey_file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        receipts.push((f, d));
    }
    let (f, d) = &receipts[1];
    assert_eq!(d["receipt"]["leaf_index"], 1);
    let mut forged = d["receipt"].clone();
    forged["entry"] = json!(forged["entry"]
        .as_str()
        .unwrap()
        .replace("escalate", "allow"));
    let ff = dir.join("forged.json");
    std::fs::write(&ff, serde_json::to_vec(&forged).unwrap()).unwrap();
    let out = s.cli(&[
        "audit",
        "verify-receipt",
        ff.to_str().unwrap(),
        "--verifier-key",
        vkey_file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("leaf_mismatch"), "{}", text(&out));
    // A receipt checked against another log's key.
    let other = dir.join("other.vkey");
    let other_log = hallmark_audit::NoteSigner::generate("other.log").unwrap();
    std::fs::write(&other, other_log.verifier().to_vkey()).unwrap();
    let out = s.cli(&[
        "audit",
        "verify-receipt",
        f.to_str().unwrap(),
        "--verifier-key",
        other.to_str().unwrap(),
    ]);
    assert!(text(&out).contains("wrong_log"), "{}", text(&out));
    std::fs::write(&other, "other.log+00000000+AQ==").unwrap();
    let out = s.cli(&[
        "audit",
        "verify-receipt",
        f.to_str().unwrap(),
        "--verifier-key",
        other.to_str().unwrap(),
    ]);
    assert!(text(&out).contains("malformed_key"), "{}", text(&out));
    let mut bad_index = d["receipt"].clone();
    bad_index["leaf_index"] = json!(7);
    std::fs::write(&ff, serde_json::to_vec(&bad_index).unwrap()).unwrap();
    let out = s.cli(&[
        "audit",
        "verify-receipt",
        ff.to_str().unwrap(),
        "--verifier-key",
        vkey_file.to_str().unwrap(),
    ]);
    assert!(text(&out).contains("out_of_range"), "{}", text(&out));

    // The checkpoint is a signed note; proofs; bad input is a 400/404 with a stable code.
    let cp = s.get("/v1/audit/checkpoint", Some(&auditor));
    assert_eq!(cp.status, 200);
    assert!(cp.header("content-type").unwrap().starts_with("text/plain"));
    let note = String::from_utf8_lossy(&cp.body).into_owned();
    assert!(
        note.contains("\n3\n") && note.contains("\n\n\u{2014} "),
        "{note}"
    );
    let p = s
        .get(
            "/v1/audit/proof/inclusion?index=1&tree_size=3",
            Some(&auditor),
        )
        .json();
    assert_eq!(p["inclusion_proof"].as_array().unwrap().len(), 2);
    let c = s
        .get("/v1/audit/proof/consistency?old=1&new=3", Some(&auditor))
        .json();
    assert_eq!(c["consistency_proof"].as_array().unwrap().len(), 2);
    for (q, code) in [
        ("inclusion?index=3&tree_size=3", "out_of_range"),
        ("inclusion?index=0&tree_size=99", "out_of_range"),
        ("inclusion?index=0&tree_size=0", "out_of_range"),
        ("inclusion?index=x&tree_size=3", "invalid_request"),
        ("inclusion?index=-1&tree_size=3", "invalid_request"),
        (
            "inclusion?index=99999999999999999999&tree_size=3",
            "invalid_request",
        ),
        ("inclusion?tree_size=3", "invalid_request"),
        ("inclusion?index=0&tree_size=3&extra=1", "invalid_request"),
        ("consistency?old=0&new=3", "out_of_range"),
        ("consistency?old=3&new=2", "out_of_range"),
        ("consistency?old=1&new=4", "out_of_range"),
        ("consistency?old=1", "invalid_request"),
    ] {
        s.get(&format!("/v1/audit/proof/{q}"), Some(&auditor))
            .assert_problem(400, code);
    }

    // A monitor holds a checkpoint, the log grows, the monitor follows it.
    let state = dir.join("monitor.json");
    let out = monitor(&s, &auditor, &state, &vkey_file);
    assert!(out.status.success(), "{}", text(&out));
    decide(&s, &moderator, &vid, "label");
    decide(&s, &moderator, &vid, "restrict");
    let out = monitor(&s, &auditor, &state, &vkey_file);
    assert!(out.status.success(), "{}", text(&out));
    let ok = s.get("/v1/audit/verify", Some(&auditor)).json();
    assert_eq!(ok["valid"], true, "{ok:#}");
    assert_eq!(ok["tree_size"], 5);
    let held = std::fs::read(&state).unwrap();

    // GET /v1/decisions: filters and cursor paging, in log order.
    let all = s
        .get(
            &format!("/v1/decisions?verification_id={vid}"),
            Some(&auditor),
        )
        .json();
    let actions: Vec<&str> = all["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["label", "escalate", "remove", "label", "restrict"]
    );
    let labels = s.get("/v1/decisions?action=label", Some(&auditor)).json();
    assert_eq!(labels["decisions"].as_array().unwrap().len(), 2);
    let page = s.get("/v1/decisions?limit=2", Some(&auditor)).json();
    assert_eq!(page["next_after"], 2);
    let rest = s
        .get("/v1/decisions?after=2&limit=10", Some(&auditor))
        .json();
    assert_eq!(rest["decisions"].as_array().unwrap().len(), 3);
    assert_eq!(rest["next_after"], Value::Null);
    let none = s
        .get("/v1/decisions?since=2999-01-01T00:00:00Z", Some(&auditor))
        .json();
    assert!(none["decisions"].as_array().unwrap().is_empty());
    for q in [
        "limit=0",
        "since=yesterday",
        "action=delete",
        "after=-1",
        "verification_id=nope",
        "x=1",
    ] {
        s.get(&format!("/v1/decisions?{q}"), Some(&auditor))
            .assert_problem(400, "invalid_request");
    }
    s.get("/v1/decisions", Some(&moderator))
        .assert_problem(403, "insufficient_scope");

    // Export and verify offline.
    let export = dir.join("audit.jsonl");
    let out = s.cli(&["audit", "export", "-o", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = s.cli(&[
        "audit",
        "verify",
        export.to_str().unwrap(),
        "--verifier-key",
        vkey_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let t = std::fs::read_to_string(&export).unwrap();
    std::fs::write(&export, t.replacen("escalate", "allow", 1)).unwrap();
    let out = s.cli(&[
        "audit",
        "verify",
        export.to_str().unwrap(),
        "--verifier-key",
        vkey_file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["first_failure"]["seq"], 2, "{r:#}");

    // The insider's edits. Entry 2 is the escalate decision.
    let entries = s
        .get("/v1/audit/entries?after=1&limit=1", Some(&auditor))
        .json();
    let original = entries["entries"][0]["entry"].as_str().unwrap().to_owned();
    let edited = original.replace("\"escalate\"", "\"allow\"");
    let cases: [(&str, String, &str, &str); 3] = [
        (
            "decisions row only",
            "UPDATE decisions SET action = 'allow' WHERE audit_seq = 2".into(),
            "record_mismatch",
            "server_verify_failed",
        ),
        (
            "log entry only",
            format!(
                "UPDATE audit_leaves SET body = {} WHERE leaf_index = 1",
                sql_str(&edited)
            ),
            "leaf_hash_mismatch",
            "entry_changed",
        ),
        (
            "entry, its leaf hash and the decisions row",
            format!(
                "UPDATE audit_leaves SET body = {}, leaf_hash = '{}' WHERE leaf_index = 1; \
                 UPDATE decisions SET action = 'allow' WHERE audit_seq = 2",
                sql_str(&edited),
                hex::encode(hallmark_audit::leaf_hash(edited.as_bytes()))
            ),
            "checkpoint_root",
            "entry_changed",
        ),
    ];
    for (what, sql, reason, monitor_code) in cases {
        s.execute_sql(&sql).unwrap();
        let bad = s.get("/v1/audit/verify", Some(&auditor)).json();
        assert_eq!(bad["valid"], false, "{what}: {bad:#}");
        assert_eq!(bad["first_failure"]["seq"], 2, "{what}: {bad:#}");
        assert_eq!(bad["first_failure"]["reason"], reason, "{what}: {bad:#}");
        std::fs::write(&state, &held).unwrap();
        let out = monitor(&s, &auditor, &state, &vkey_file);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        assert!(text(&out).contains(monitor_code), "{what}: {}", text(&out));
        s.execute_sql(&format!(
            "UPDATE audit_leaves SET body = {}, leaf_hash = '{}' WHERE leaf_index = 1; \
             UPDATE decisions SET action = 'escalate' WHERE audit_seq = 2",
            sql_str(&original),
            hex::encode(hallmark_audit::leaf_hash(original.as_bytes()))
        ))
        .unwrap();
        assert_eq!(
            s.get("/v1/audit/verify", Some(&auditor)).json()["valid"],
            true
        );
    }
    // A checkpoint with a bad signature in the store is named too.
    s.execute_sql("UPDATE audit_checkpoints SET note = replace(note, '\u{2014} ', '\u{2014} x') WHERE tree_size = 3")
        .unwrap();
    let bad = s.get("/v1/audit/verify", Some(&auditor)).json();
    assert_eq!(
        bad["first_failure"]["reason"], "checkpoint_signature",
        "{bad:#}"
    );
    assert_eq!(bad["first_failure"]["seq"], 3, "{bad:#}");
}

#[test]
fn transparency_log_on_sqlite() {
    transparency(Backend::Sqlite);
}

#[test]
fn transparency_log_on_postgres() {
    transparency(Backend::Postgres);
}

fn post_many(s: &Server, key: &str, vid: &str, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| {
            decide(s, key, vid, "label")["receipt"]["leaf_index"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn two_processes_one_postgres_log_and_sigkill() {
    let a = Server::start(Backend::Postgres, &NO_DETECTORS).unwrap();
    let key_path = a.data.path().join("audit-log.key");
    let key_env = key_path.to_str().unwrap().to_owned();
    let env = [
        NO_DETECTORS[0],
        ("HALLMARK__AUDIT__KEY_PATH", key_env.as_str()),
    ];
    let b = Server::start_on(&a.database_url, &env).unwrap();
    let vid = new_verification(&a);
    let moderator = a.create_key("moderate");
    let auditor = a.create_key("audit");

    let mut all: Vec<u64> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let s = if i % 2 == 0 { &a } else { &b };
                let (m, v) = (&moderator, &vid);
                sc.spawn(move || post_many(s, m, v, 40))
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    all.sort_unstable();
    assert_eq!(
        all,
        (0..240).collect::<Vec<u64>>(),
        "one log, no gaps, no duplicates"
    );
    for s in [&a, &b] {
        let r = s.get("/v1/audit/verify", Some(&auditor)).json();
        assert_eq!(r["valid"], true, "{r:#}");
        assert_eq!(r["tree_size"], 240);
    }

    // SIGKILL b while clients append through it; what it acknowledged must survive.
    let acked: Vec<(u64, String)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (s, m, v) = (&b, &moderator, &vid);
                sc.spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        let resp = s.post_json(
                            "/v1/decisions",
                            Some(m),
                            &json!({"verification_id": v, "action": "remove", "policy": "p"}),
                        );
                        if resp.status != 201 {
                            break got;
                        }
                        let d = resp.json();
                        got.push((
                            d["receipt"]["leaf_index"].as_u64().unwrap(),
                            d["receipt"]["leaf_hash"].as_str().unwrap().to_owned(),
                        ));
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        b.sigkill();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        acked.len() > 10,
        "only {} decisions acknowledged before the kill",
        acked.len()
    );
    let c = Server::start_on(&a.database_url, &env).unwrap();
    post_many(&c, &moderator, &vid, 3);
    let r = c.get("/v1/audit/verify", Some(&auditor)).json();
    assert_eq!(r["valid"], true, "{r:#}");
    let size = r["tree_size"].as_u64().unwrap();
    for (index, hash) in &acked {
        assert!(*index < size);
        let e = c
            .get(
                &format!("/v1/audit/entries?after={index}&limit=1"),
                Some(&auditor),
            )
            .json();
        assert_eq!(
            e["entries"][0]["leaf_hash"].as_str(),
            Some(hash.as_str()),
            "leaf {index}"
        );
    }
}

/// Two moderators polling the review queue concurrently never lease the same item; decided
/// and unremarkable verifications are not offered.
fn review_queue(backend: Backend) {
    let s = Server::start(backend, &NO_DETECTORS).unwrap();
    let mut wanted = Vec::new();
    for (i, label) in [
        "likely_ai_generated",
        "no_evidence",
        "tampered",
        "provenance_valid",
        "blocked_signer",
        "likely_ai_generated",
        "tampered",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("0190f000-0000-7000-8000-{:012}", 100 + i);
        s.execute_sql(&format!(
            "INSERT INTO verifications (id, created_at, sha256, media_type, asset_id, requested_by, report) \
             VALUES ('{id}', '2026-12-07T00:00:0{i}.000Z', '{}', 'image/png', NULL, 'test', \
             '{{\"verdict\":{{\"label\":\"{label}\",\"reasons\":[]}}}}')",
            "ab".repeat(32)
        ))
        .unwrap();
        if !matches!(*label, "no_evidence" | "provenance_valid") {
            wanted.push(id);
        }
    }
    let m1 = s.create_key("moderate");
    let m2 = s.create_key("moderate");
    // One decided item leaves the queue.
    decide(&s, &m1, &wanted[0], "label");
    // Each moderator: lease, check nobody else holds it, decide (ends the lease), repeat.
    let leased: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = [&m1, &m2]
            .into_iter()
            .map(|m| {
                let s = &s;
                sc.spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..10 {
                        let r = s.get("/v1/review/next", Some(m));
                        if r.status == 204 {
                            break;
                        }
                        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                        let id = r.json()["verification_id"].as_str().unwrap().to_owned();
                        // Polling again before deciding returns the same lease.
                        let again = s.get("/v1/review/next", Some(m)).json();
                        assert_eq!(again["verification_id"].as_str(), Some(id.as_str()));
                        decide(s, m, &id, "label");
                        got.push(id);
                    }
                    got
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut distinct = leased.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        leased.len(),
        "an item was leased twice: {leased:?}"
    );
    let mut expect: Vec<String> = wanted[1..].to_vec();
    expect.sort();
    assert_eq!(
        distinct, expect,
        "every undecided item needing review is leased once"
    );
    s.get("/v1/review/next?lease_seconds=0", Some(&m1))
        .assert_problem(400, "invalid_request");
    s.get("/v1/review/next", Some(&s.create_key("audit")))
        .assert_problem(403, "insufficient_scope");
}

#[test]
fn review_queue_leases_each_item_once_on_sqlite() {
    review_queue(Backend::Sqlite);
}

#[test]
fn review_queue_leases_each_item_once_on_postgres() {
    review_queue(Backend::Postgres);
}
