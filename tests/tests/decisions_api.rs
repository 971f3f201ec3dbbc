//! Recording decisions over HTTP on SQLite and Postgres: `POST /v1/decisions/batch` (one
//! receipt per decision, all or none), `Idempotency-Key` (a retry, also one racing the
//! original, gets the original receipts and records nothing; another request under the same
//! key is 422; keys are per API key and survive a restart), and `GET /v1/verifications`
//! (filters and cursor paging).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hallmark_tests::{Backend, Resp, Server};
use serde_json::{json, Value};

const NO_DETECTORS: [(&str, &str); 1] = [("HALLMARK__DETECTORS__ENABLED", "false")];

/// Inserts a verification with a report holding `verdict` (and `band` when given).
fn seed(s: &Server, n: u32, created_at: &str, verdict: &str, band: Option<&str>) -> String {
    let id = format!("0190f000-0000-7000-8000-{n:012}");
    let report = match band {
        Some(b) => json!({"verdict": {"label": verdict, "reasons": []}, "detection": {"band": b}}),
        None => json!({"verdict": {"label": verdict, "reasons": []}}),
    };
    let band_sql = band.map_or("NULL".to_owned(), |b| format!("'{b}'"));
    s.execute_sql(&format!(
        "INSERT INTO verifications (id, created_at, sha256, media_type, asset_id, requested_by, \
         report, verdict, band) VALUES ('{id}', '{created_at}', '{}', 'image/png', NULL, 'test', \
         '{report}', '{verdict}', {band_sql})",
        format!("{n:02x}").repeat(32)
    ))
    .unwrap();
    id
}

fn post(s: &Server, path: &str, key: &str, idem: Option<&str>, body: &Value) -> Resp {
    let auth = format!("Bearer {key}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    if let Some(k) = idem {
        headers.push(("Idempotency-Key", k));
    }
    s.request("POST", path, &headers, Some(body.to_string().as_bytes()))
}

fn tree_size(s: &Server, auditor: &str) -> u64 {
    let r = s.get("/v1/audit/verify", Some(auditor)).json();
    assert_eq!(r["valid"], true, "{r:#}");
    r["tree_size"].as_u64().unwrap()
}

fn decisions_about(s: &Server, auditor: &str, vid: &str) -> Vec<Value> {
    let r = s.get(
        &format!("/v1/decisions?verification_id={vid}&limit=1000"),
        Some(auditor),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["decisions"].as_array().unwrap().clone()
}

fn verifier(s: &Server) -> hallmark_audit::NoteVerifier {
    let out = s.cli(&["audit", "public-key"]);
    hallmark_audit::NoteVerifier::parse(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

fn check_receipt(d: &Value, vkey: &hallmark_audit::NoteVerifier) -> u64 {
    let r: hallmark_audit::Receipt = serde_json::from_value(d["receipt"].clone()).unwrap();
    r.verify(vkey).unwrap().size
}

fn batch_route(s: &Server, moderator: &str, auditor: &str) {
    let vkey = verifier(s);
    let (v1, v2) = (
        seed(s, 1, "2026-12-07T10:00:00.000Z", "tampered", None),
        seed(
            s,
            2,
            "2026-12-07T10:00:01.000Z",
            "likely_ai_generated",
            None,
        ),
    );
    let one =
        |vid: &str, action: &str| json!({"verification_id": vid, "action": action, "policy": "p1"});
    let before = tree_size(s, auditor);
    let r = post(
        s,
        "/v1/decisions/batch",
        moderator,
        None,
        &json!({"decisions": [one(&v1, "label"), one(&v2, "remove"), one(&v1, "escalate")]}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let ds = r.json()["decisions"].as_array().unwrap().clone();
    assert_eq!(ds.len(), 3);
    let sizes: Vec<u64> = ds.iter().map(|d| check_receipt(d, &vkey)).collect();
    assert!(sizes.iter().all(|&n| n == before + 3), "{sizes:?}");
    for (i, d) in ds.iter().enumerate() {
        assert_eq!(d["audit_seq"].as_u64(), Some(before + 1 + i as u64));
    }
    assert_eq!(ds[1]["action"], "remove");
    assert_eq!(ds[1]["verification_id"].as_str(), Some(v2.as_str()));

    // All or none: an unknown verification, a bad field (named by index), an empty or an
    // over-long list record nothing.
    let ghost = "0190f000-0000-7000-8000-999999999999";
    post(
        s,
        "/v1/decisions/batch",
        moderator,
        None,
        &json!({"decisions": [one(&v1, "label"), one(ghost, "label")]}),
    )
    .assert_problem(404, "not_found");
    let bad = post(
        s,
        "/v1/decisions/batch",
        moderator,
        None,
        &json!({"decisions": [one(&v1, "label"), {"verification_id": v1, "action": "label", "policy": " "}]}),
    );
    bad.assert_problem(400, "invalid_request");
    assert!(String::from_utf8_lossy(&bad.body).contains("decisions[1]"));
    post(
        s,
        "/v1/decisions/batch",
        moderator,
        None,
        &json!({"decisions": []}),
    )
    .assert_problem(400, "invalid_request");
    let many: Vec<Value> = (0..101).map(|_| one(&v1, "label")).collect();
    post(
        s,
        "/v1/decisions/batch",
        moderator,
        None,
        &json!({"decisions": many}),
    )
    .assert_problem(400, "invalid_request");
    post(
        s,
        "/v1/decisions/batch",
        moderator,
        None,
        &json!([one(&v1, "label")]),
    )
    .assert_problem(400, "invalid_request");
    post(
        s,
        "/v1/decisions/batch",
        auditor,
        None,
        &json!({"decisions": [one(&v1, "label")]}),
    )
    .assert_problem(403, "insufficient_scope");
    s.get("/v1/decisions/batch", Some(moderator))
        .assert_problem(405, "method_not_allowed");
    assert_eq!(tree_size(s, auditor), before + 3);
}

/// Sends `body` with key `k` from `n` threads at once; returns the responses.
fn race(s: &Server, path: &str, moderator: &str, k: &str, body: &Value, n: usize) -> Vec<Resp> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let barrier = &barrier;
                sc.spawn(move || {
                    barrier.wait();
                    post(s, path, moderator, Some(k), body)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn idempotency(backend: Backend) {
    let s1 = Server::start(backend, &NO_DETECTORS).unwrap();
    let moderator = s1.create_key("moderate");
    let other = s1.create_key("moderate");
    let auditor = s1.create_key("audit");
    batch_route(&s1, &moderator, &auditor);
    let vid = seed(&s1, 10, "2026-12-07T11:00:00.000Z", "tampered", None);
    let body = json!({"verification_id": vid, "action": "label", "policy": "p", "reason": "r"});

    let first = post(&s1, "/v1/decisions", &moderator, Some("order-17"), &body);
    assert_eq!(
        first.status,
        201,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(first.header("idempotent-replayed"), None);
    let size = tree_size(&s1, &auditor);
    // The retry (same request, re-encoded, key as an RFC 8941 string) gets the original body.
    let reordered = json!({"reason": "r", "policy": "p", "action": "label", "verification_id": vid.to_uppercase()});
    let retry = post(
        &s1,
        "/v1/decisions",
        &moderator,
        Some("\"order-17\""),
        &reordered,
    );
    assert_eq!(retry.status, 201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json(), first.json());
    assert_eq!(tree_size(&s1, &auditor), size);
    assert_eq!(decisions_about(&s1, &auditor, &vid).len(), 1);
    // Another request under the same key: refused, nothing recorded.
    let changed = json!({"verification_id": vid, "action": "remove", "policy": "p", "reason": "r"});
    post(&s1, "/v1/decisions", &moderator, Some("order-17"), &changed)
        .assert_problem(422, "idempotency_key_reused");
    post(
        &s1,
        "/v1/decisions/batch",
        &moderator,
        Some("order-17"),
        &json!({"decisions": [body]}),
    )
    .assert_problem(422, "idempotency_key_reused");
    // Keys are per API key: another moderator's "order-17" is a new request.
    let theirs = post(&s1, "/v1/decisions", &other, Some("order-17"), &body);
    assert_eq!(theirs.status, 201);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(theirs.json()["id"], first.json()["id"]);
    // Malformed keys.
    let long = "k".repeat(256);
    for bad in ["", "\"open", "\"a\"b\"", long.as_str()] {
        post(&s1, "/v1/decisions", &moderator, Some(bad), &body)
            .assert_problem(400, "invalid_request");
    }
    // A batch under a key replays whole.
    let batch = json!({"decisions": [body, changed]});
    let b1 = post(
        &s1,
        "/v1/decisions/batch",
        &moderator,
        Some("batch-1"),
        &batch,
    );
    assert_eq!(b1.status, 201);
    let b2 = post(
        &s1,
        "/v1/decisions/batch",
        &moderator,
        Some("batch-1"),
        &batch,
    );
    assert_eq!(b2.header("idempotent-replayed"), Some("true"));
    assert_eq!(b2.json(), b1.json());
    assert_eq!(decisions_about(&s1, &auditor, &vid).len(), 4);

    // Retries racing the original: each key records exactly once, every sender gets the
    // same receipt.
    let rvid = seed(&s1, 11, "2026-12-07T11:00:01.000Z", "tampered", None);
    let rbody = json!({"verification_id": rvid, "action": "label", "policy": "p"});
    for round in 0..8 {
        let k = format!("race-{round}");
        let rs = race(&s1, "/v1/decisions", &moderator, &k, &rbody, 4);
        assert!(rs.iter().all(|r| r.status == 201), "{rs:?}");
        let fresh = rs
            .iter()
            .filter(|r| r.header("idempotent-replayed").is_none())
            .count();
        assert_eq!(fresh, 1, "round {round}");
        assert!(rs.iter().all(|r| r.json() == rs[0].json()));
    }
    assert_eq!(decisions_about(&s1, &auditor, &rvid).len(), 8);

    // After a restart (SIGKILL; the same database and log key), the key still replays.
    s1.sigkill();
    let key_path = s1.data.path().join("audit-log.key");
    let env = [
        NO_DETECTORS[0],
        ("HALLMARK__AUDIT__KEY_PATH", key_path.to_str().unwrap()),
    ];
    let s2 = Server::start_on(&s1.database_url, &env).unwrap();
    let again = post(&s2, "/v1/decisions", &moderator, Some("order-17"), &body);
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());
    post(&s2, "/v1/decisions", &moderator, Some("order-17"), &changed)
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(decisions_about(&s2, &auditor, &vid).len(), 4);
    let r = s2.get("/v1/audit/verify", Some(&auditor)).json();
    assert_eq!(r["valid"], true, "{r:#}");
    drop(s2);
}

#[test]
fn batch_and_idempotency_on_sqlite() {
    idempotency(Backend::Sqlite);
}

#[test]
fn batch_and_idempotency_on_postgres() {
    idempotency(Backend::Postgres);
}

fn ids(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

fn pick(v: &[String], idx: &[usize]) -> Vec<String> {
    idx.iter().map(|&i| v[i].clone()).collect()
}

fn listing(backend: Backend) {
    let s = Server::start(backend, &NO_DETECTORS).unwrap();
    let viewer = s.create_key("verify");
    let moderator = s.create_key("moderate");
    let rows = [
        ("tampered", None, "2026-12-01T00:00:00.000Z"),
        (
            "likely_ai_generated",
            Some("likely_synthetic"),
            "2026-12-02T00:00:00.000Z",
        ),
        ("no_evidence", Some("no_signal"), "2026-12-03T00:00:00.000Z"),
        (
            "likely_ai_generated",
            Some("likely_synthetic"),
            "2026-12-04T00:00:00.000Z",
        ),
        (
            "provenance_valid",
            Some("inconclusive"),
            "2026-12-05T00:00:00.000Z",
        ),
    ];
    let v: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (verdict, band, at))| seed(&s, 20 + i as u32, at, verdict, *band))
        .collect();
    let get = |q: &str| s.get(&format!("/v1/verifications{q}"), Some(&viewer));
    // Newest first; filters.
    assert_eq!(ids(&get("")), pick(&v, &[4, 3, 2, 1, 0]));
    assert_eq!(ids(&get("?verdict=likely_ai_generated")), pick(&v, &[3, 1]));
    assert_eq!(
        ids(&get("?verdict=tampered,no_evidence")),
        pick(&v, &[2, 0])
    );
    assert_eq!(ids(&get("?band=inconclusive")), pick(&v, &[4]));
    assert_eq!(
        ids(&get(
            "?since=2026-12-02T00:00:00Z&until=2026-12-04T00:00:00Z"
        )),
        pick(&v, &[2, 1])
    );
    assert_eq!(
        ids(&get(&format!("?sha256={}", "15".repeat(32).to_uppercase()))),
        pick(&v, &[1])
    );
    assert_eq!(ids(&get("?media_type=image/png&limit=1")), pick(&v, &[4]));
    assert!(ids(&get("?media_type=audio/wav")).is_empty());
    assert!(ids(&get("?asset_id=0190f000-0000-7000-8000-000000000099")).is_empty());
    // Decided or not: the review backlog is the undecided items with a verdict needing a human.
    let d = post(
        &s,
        "/v1/decisions",
        &moderator,
        None,
        &json!({"verification_id": v[3], "action": "label", "policy": "p"}),
    );
    assert_eq!(d.status, 201);
    assert_eq!(
        ids(&get("?decided=false&verdict=tampered,likely_ai_generated")),
        pick(&v, &[1, 0])
    );
    let decided = get("?decided=true").json();
    assert_eq!(
        decided["verifications"][0]["id"].as_str(),
        Some(v[3].as_str())
    );
    assert_eq!(decided["verifications"][0]["decisions"], 1);
    assert_eq!(decided["verifications"][0]["band"], "likely_synthetic");
    // Cursor paging walks every row once.
    let mut seen = Vec::new();
    let mut q = "?limit=2".to_owned();
    loop {
        let page = get(&q);
        seen.extend(ids(&page));
        match page.json()["next_cursor"].as_str() {
            Some(c) => q = format!("?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids(&get("")));
    // A verification stored by POST /v1/verify carries its verdict into the listing.
    let png = hallmark_tests::fixtures::encode(
        &hallmark_tests::fixtures::photo(256, 256, 5),
        image::ImageFormat::Png,
    );
    let r = s.verify(&png);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let report = r.json();
    let label = report["verdict"]["label"].as_str().unwrap().to_owned();
    let listed = get(&format!("?sha256={}", report["sha256"].as_str().unwrap())).json();
    assert_eq!(
        listed["verifications"][0]["verdict"].as_str(),
        Some(label.as_str())
    );
    // Bad input and scope.
    for bad in [
        "?verdict=fake",
        "?band=high",
        "?sha256=abc",
        "?since=yesterday",
        "?decided=maybe",
        "?limit=0",
        "?limit=1001",
        "?cursor=!!!",
        "?cursor=bm9wZQ",
        "?asset_id=x",
        "?media_type=png",
        "?colour=red",
    ] {
        get(bad).assert_problem(400, "invalid_request");
    }
    s.get("/v1/verifications", Some(&moderator))
        .assert_problem(403, "insufficient_scope");
    s.get("/v1/verifications", None)
        .assert_problem(401, "unauthorized");
}

#[test]
fn verification_listing_on_sqlite() {
    listing(Backend::Sqlite);
}

#[test]
fn verification_listing_on_postgres() {
    listing(Backend::Postgres);
}
