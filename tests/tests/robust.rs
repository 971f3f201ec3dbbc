#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Untrusted bodies and honest writes: scope is checked before a body is read; the upload
//! budget, per-key upload limit and minimum upload rate; `Idempotency-Key` on sign and
//! generate; a signed asset never stored without its manifest.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hallmark_tests::fixtures::{encode, photo};
use hallmark_tests::{multipart_body, Backend, Server};
use serde_json::json;

/// Opens a connection and sends a request head declaring `content_length` body bytes, then
/// `first` of them.
fn open_post(s: &Server, path: &str, key: &str, content_length: usize, first: &[u8]) -> TcpStream {
    let addr = s.base.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {content_length}\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(first).unwrap();
    c
}

/// The status of the response on `c`, if one arrives within `wait`.
fn status_within(c: &mut TcpStream, wait: Duration) -> Option<u16> {
    c.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    let start = Instant::now();
    while start.elapsed() < wait && !got.windows(2).any(|w| w == b"\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&got);
    line.split(' ').nth(1).and_then(|s| s.parse().ok())
}

#[test]
fn scope_is_checked_before_the_body_is_read() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let verify_only = s.create_key("verify");
    let big = json!({ "policy": "x".repeat(200_000) });
    for path in [
        "/v1/decisions",
        "/v1/decisions/batch",
        "/v1/generate",
        "/v1/keys",
    ] {
        s.post_json(path, Some(&verify_only), &big)
            .assert_problem(403, "insufficient_scope");
    }
    // Not even the declared size is looked at: a head declaring 10 GB gets 403 at once.
    let mut c = open_post(&s, "/v1/decisions", &verify_only, 10_000_000_000, b"{");
    assert_eq!(status_within(&mut c, Duration::from_secs(10)), Some(403));
    // Without a key: 401; with the scope: the size limit (413).
    s.post_json("/v1/decisions", None, &big)
        .assert_problem(401, "unauthorized");
    s.post_json("/v1/decisions", Some(&s.admin_key), &big)
        .assert_problem(413, "payload_too_large");
}

#[test]
fn upload_budget_bounds_slow_uploads_and_slow_bodies_are_cut() {
    let s = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__SERVER__UPLOAD_BUDGET_BYTES", "4194304"),
            ("HALLMARK__SERVER__MAX_UPLOADS_PER_KEY", "0"),
            ("HALLMARK__SERVER__MIN_UPLOAD_BYTES_PER_SECOND", "1000"),
            ("HALLMARK__SERVER__UPLOAD_RATE_GRACE_SECONDS", "6"),
            ("HALLMARK__SERVER__WORKERS", "4"),
        ],
    )
    .unwrap();
    let key = s.admin_key.clone();
    // 50 uploads of 1 MiB each, sent slowly (one byte now): a 4 MiB budget holds four.
    let mut conns: Vec<TcpStream> = (0..50)
        .map(|_| open_post(&s, "/v1/verify", &key, 1 << 20, b"x"))
        .collect();
    let opened = Instant::now();
    // Let the server see every request head (the refusals are immediate).
    std::thread::sleep(Duration::from_millis(2000));
    let mut refused = 0;
    let mut held = Vec::new();
    for mut c in conns.drain(..) {
        match status_within(&mut c, Duration::from_millis(100)) {
            Some(503) => refused += 1,
            None => held.push(c),
            Some(other) => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(held.len(), 4, "{refused} refused");
    assert_eq!(refused, 46);
    // The held bodies are cut once they fall under 1000 B/s after the 6 s grace.
    assert!(
        opened.elapsed() < Duration::from_secs(6),
        "{:?}",
        opened.elapsed()
    );
    for c in &mut held {
        assert_eq!(status_within(c, Duration::from_secs(15)), Some(408));
    }
    let cut = opened.elapsed();
    assert!(
        cut > Duration::from_secs(5) && cut < Duration::from_secs(12),
        "{cut:?}"
    );
    // The budget is returned: a full-speed upload goes through (and is analysed).
    let png = encode(&photo(64, 64, 1), image::ImageFormat::Png);
    assert_eq!(s.verify(&png).status, 201);
    // A body larger than the whole budget can never fit.
    let mut c = open_post(&s, "/v1/verify", &key, 5 << 20, b"x");
    assert_eq!(status_within(&mut c, Duration::from_secs(5)), Some(503));
}

#[test]
fn per_key_upload_limit() {
    let s = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__SERVER__MAX_UPLOADS_PER_KEY", "2"),
            ("HALLMARK__SERVER__WORKERS", "4"),
        ],
    )
    .unwrap();
    let (a, b) = (s.admin_key.clone(), s.create_key("verify"));
    let mut first = open_post(&s, "/v1/verify", &a, 1000, b"x");
    let mut second = open_post(&s, "/v1/verify", &a, 1000, b"x");
    std::thread::sleep(Duration::from_millis(500));
    let mut third = open_post(&s, "/v1/verify", &a, 1000, b"x");
    assert_eq!(status_within(&mut third, Duration::from_secs(5)), Some(429));
    // Another key is not affected.
    let png = encode(&photo(64, 64, 2), image::ImageFormat::Png);
    let (ct, body) = multipart_body(&[("file", Some("a"), &png)]);
    assert_eq!(s.post_raw("/v1/verify", Some(&b), &ct, &body).status, 201);
    // Finishing one upload frees its slot.
    first.write_all(&[0u8; 999]).unwrap();
    assert!(status_within(&mut first, Duration::from_secs(10)).is_some());
    assert_eq!(s.post_raw("/v1/verify", Some(&a), &ct, &body).status, 201);
    drop(second.write_all(&[0u8; 999]));
}

fn sign_with_key(s: &Server, idem: Option<&str>, file: &[u8], model: &str) -> hallmark_tests::Resp {
    let meta = json!({ "model": model }).to_string();
    let (ct, body) = multipart_body(&[
        ("file", Some("a"), file),
        ("metadata", None, meta.as_bytes()),
    ]);
    let auth = format!("Bearer {}", s.admin_key);
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", ct.as_str()),
    ];
    if let Some(k) = idem {
        headers.push(("Idempotency-Key", k));
    }
    s.request("POST", "/v1/sign", &headers, Some(&body))
}

#[test]
fn sign_idempotency_replays_and_refuses_reuse() {
    for backend in Backend::ALL {
        let s = Server::start(backend, &[]).unwrap();
        let png = encode(&photo(256, 256, 5), image::ImageFormat::Png);
        let first = sign_with_key(&s, Some("sign-1"), &png, "m");
        assert_eq!(
            first.status,
            200,
            "{}",
            String::from_utf8_lossy(&first.body)
        );
        assert_eq!(first.header("idempotent-replayed"), None);
        let again = sign_with_key(&s, Some("sign-1"), &png, "m");
        assert_eq!(again.status, 200);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body, first.body);
        for h in [
            "hallmark-asset-id",
            "hallmark-manifest-label",
            "hallmark-watermark-payload",
        ] {
            assert_eq!(again.header(h), first.header(h), "{h}");
        }
        assert_eq!(s.count_rows("assets"), 1);
        // Same key, different request: the decisions routes' answer.
        sign_with_key(&s, Some("sign-1"), &png, "other-model")
            .assert_problem(422, "idempotency_key_reused");
        // No key, or another key: a new asset each time.
        assert_eq!(sign_with_key(&s, None, &png, "m").status, 200);
        assert_eq!(sign_with_key(&s, Some("sign-2"), &png, "m").status, 200);
        assert_eq!(s.count_rows("assets"), 3);
        // A failed request releases its key: the retry runs.
        sign_with_key(&s, Some("sign-3"), b"not media", "m")
            .assert_problem(415, "unsupported_media_type");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(sign_with_key(&s, Some("sign-3"), &png, "m").status, 200);

        // Racing retries record once: every answer is the one asset or 409 (in progress).
        let before = s.count_rows("assets");
        let answers: Vec<_> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|_| sc.spawn(|| sign_with_key(&s, Some("race"), &png, "m")))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ids: std::collections::BTreeSet<_> = answers
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.header("hallmark-asset-id").unwrap().to_owned())
            .collect();
        assert!(answers.iter().all(|r| r.status == 200 || r.status == 409));
        assert!(answers
            .iter()
            .filter(|r| r.status == 409)
            .all(|r| r.json()["code"] == "idempotency_key_in_use"));
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(s.count_rows("assets") - before, 1, "{backend:?}");
    }
}

#[test]
fn generate_idempotency() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let auth = format!("Bearer {}", s.admin_key);
    let list = s.get("/v1/generators", Some(&s.admin_key)).json();
    let Some(name) = list["generators"][0]["name"].as_str() else {
        panic!("no generator registered: {list}");
    };
    let send = |body: serde_json::Value| {
        s.request(
            "POST",
            "/v1/generate",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "\"gen-1\""),
            ],
            Some(body.to_string().as_bytes()),
        )
    };
    // No seed: a re-render would differ; the replay is the first image.
    let body = json!({ "generator": name, "width": 256, "height": 256 });
    let first = send(body.clone());
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let again = send(body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    send(json!({ "generator": name, "width": 320, "height": 256 }))
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(s.count_rows("assets"), 1);
}

#[test]
fn a_failed_manifest_insert_leaves_no_asset() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    s.execute_sql(
        "CREATE TRIGGER fail_manifest BEFORE INSERT ON manifests \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();
    let png = encode(&photo(256, 256, 9), image::ImageFormat::Png);
    let r = sign_with_key(&s, Some("k"), &png, "m");
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(s.count_rows("assets"), 0);
    assert_eq!(s.count_rows("manifests"), 0);
    // The key was released with the failed request: once the fault is gone, the retry signs.
    s.execute_sql("DROP TRIGGER fail_manifest").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(sign_with_key(&s, Some("k"), &png, "m").status, 200);
    assert_eq!(s.count_rows("assets"), 1);
    assert_eq!(s.count_rows("manifests"), 1);
}
