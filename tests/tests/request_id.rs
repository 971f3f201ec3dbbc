//! Request ids and JSON logs (issue 20): every response, problems included, carries
//! `X-Request-Id` (the client's own when it is safe, a fresh UUID otherwise), and
//! `HALLMARK_LOG_FORMAT=json` makes every log line one JSON object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hallmark_tests::{Backend, Server};

const ENV: [(&str, &str); 1] = [("HALLMARK__DETECTORS__ENABLED", "false")];

fn id_of(r: &hallmark_tests::Resp) -> String {
    r.header("x-request-id")
        .expect("every response has X-Request-Id")
        .to_owned()
}

#[test]
fn every_response_carries_a_request_id() {
    let s = Server::start(Backend::Sqlite, &ENV).unwrap();
    let a = id_of(&s.get("/healthz", None));
    let b = id_of(&s.get("/healthz", None));
    assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
    assert_ne!(a, b, "a fresh id per request");

    // A problem response (401) has one too.
    let r = s.get("/v1/keys", None);
    assert_eq!(r.status, 401);
    assert!(uuid::Uuid::parse_str(&id_of(&r)).is_ok());

    // The client's own safe id is kept; an unsafe one is replaced.
    let own = s.request("GET", "/healthz", &[("X-Request-Id", "proxy-7f3a.1")], None);
    assert_eq!(id_of(&own), "proxy-7f3a.1");
    let bad = s.request(
        "GET",
        "/healthz",
        &[("X-Request-Id", "<script>alert(1)</script>")],
        None,
    );
    let replaced = id_of(&bad);
    assert_ne!(replaced, "<script>alert(1)</script>");
    assert!(uuid::Uuid::parse_str(&replaced).is_ok());
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let s = Server::start(Backend::Sqlite, &ENV).unwrap();
    let out = s.cli_env(
        &["detectors", "list"],
        &[
            ("HALLMARK_LOG_FORMAT", "json"),
            ("HALLMARK_LOG", "info"),
            ("HALLMARK__DETECTORS__ENABLED", "true"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the command logs at info");
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
}
