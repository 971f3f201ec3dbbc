//! Rate limits (issue 20, issue 18) and Prometheus `/metrics` (issue 20) over HTTP against
//! the real binary.
//!
//! * A key over its rate for a route gets 429 `rate_limited` with `Retry-After`; other routes,
//!   other keys and unauthenticated routes keep their own budgets; after Retry-After it works.
//! * 4,000 bad-key requests from one address do not become 4,000 database queries: after the
//!   failed-authentication budget the address gets 429 before any lookup, counted on
//!   PostgreSQL itself (`pg_stat_database.xact_commit`, with a control run without the limit).
//! * `/metrics` parses as Prometheus text (a strict checker of the 0.0.4 exposition format
//!   below) and its counters move under load; the optional scrape token is enforced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use hallmark_tests::fixtures::{encode, photo};
use hallmark_tests::{Backend, Server};
use image::ImageFormat;
use serde_json::json;

const MISSING: &str = "/v1/verifications/00000000-0000-7000-8000-000000000000";

#[test]
fn a_key_over_its_rate_gets_429_with_retry_after() {
    let s = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__DETECTORS__ENABLED", "false"),
            ("HALLMARK__RATE_LIMITS__PER_SECOND", "0.5"),
            ("HALLMARK__RATE_LIMITS__BURST", "3"),
        ],
    )
    .unwrap();
    let key = s.admin_key.clone();
    for _ in 0..3 {
        s.get(MISSING, Some(&key)).assert_problem(404, "not_found");
    }
    let r = s.get(MISSING, Some(&key));
    r.assert_problem(429, "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Another route of the same key, and another key on the same route, have their own buckets.
    assert_eq!(s.get("/v1/keys", Some(&key)).status, 200);
    let other = s.create_key("verify");
    s.get(MISSING, Some(&other))
        .assert_problem(404, "not_found");
    // Routes without a key are not limited.
    for _ in 0..30 {
        assert_eq!(s.get("/healthz", None).status, 200);
    }
    // After Retry-After the key is admitted again.
    std::thread::sleep(Duration::from_secs(retry));
    s.get(MISSING, Some(&key)).assert_problem(404, "not_found");
}

#[test]
fn per_route_overrides_from_the_settings_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("hallmark.toml");
    std::fs::write(
        &cfg,
        "[rate_limits.routes]\n\"/v1/keys/{id}/revoke\" = { per_second = 0.01, burst = 1 }\n\
         \"/v1/verifications/{id}\" = { per_second = 0.0, burst = 1 }\n",
    )
    .unwrap();
    let s = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__DETECTORS__ENABLED", "false"),
            ("HALLMARK__RATE_LIMITS__PER_SECOND", "0.5"),
            ("HALLMARK__RATE_LIMITS__BURST", "2"),
            ("HALLMARK_CONFIG", cfg.to_str().unwrap()),
        ],
    )
    .unwrap();
    let key = s.admin_key.clone();
    // Overridden to unlimited: far past the default burst.
    for _ in 0..10 {
        s.get(MISSING, Some(&key)).assert_problem(404, "not_found");
    }
    // Overridden to one request per 100 s.
    let unknown = "/v1/keys/00000000-0000-7000-8000-000000000000/revoke";
    s.post_json(unknown, Some(&key), &json!({}))
        .assert_problem(404, "not_found");
    let r = s.post_json(unknown, Some(&key), &json!({}));
    r.assert_problem(429, "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((90..=100).contains(&retry), "Retry-After {retry}");
    // Not overridden: the default (burst 2).
    for _ in 0..2 {
        assert_eq!(s.get("/v1/keys", Some(&key)).status, 200);
    }
    s.get("/v1/keys", Some(&key))
        .assert_problem(429, "rate_limited");
}

/// Committed transactions in the server's database. An idle backend flushes its statistics
/// at most every 10 s (PostgreSQL's PGSTAT_IDLE_INTERVAL), so wait that out first.
fn xact_commit(url: &str) -> i64 {
    std::thread::sleep(Duration::from_secs(11));
    let out = std::process::Command::new("psql")
        .args([
            url,
            "-tAc",
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        ])
        .output()
        .expect("psql (postgresql-client) is required by this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn flood(s: &Server, n: usize) -> BTreeMap<u16, usize> {
    let mut statuses = BTreeMap::new();
    for i in 0..n {
        let bad = format!("hm_not-a-real-key-{i:08}");
        let r = s.get(MISSING, Some(&bad));
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
        }
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    statuses
}

#[test]
fn a_bad_key_flood_does_not_become_a_database_flood() {
    let s = Server::start(
        Backend::Postgres,
        &[
            ("HALLMARK__DETECTORS__ENABLED", "false"),
            ("HALLMARK__RATE_LIMITS__FAILED_AUTH_PER_MINUTE", "6"),
            ("HALLMARK__RATE_LIMITS__FAILED_AUTH_BURST", "10"),
        ],
    )
    .unwrap();
    let before = xact_commit(&s.database_url);
    let statuses = flood(&s, 4000);
    // A valid key from the same address is refused too while it is blocked (no lookup).
    s.get(MISSING, Some(&s.admin_key))
        .assert_problem(429, "rate_limited");
    let refused = statuses.get(&429).copied().unwrap_or(0) as f64;
    assert_eq!(
        sum(
            &scrape(&s),
            "hallmark_rate_limited_total",
            &[("reason", "failed_auth")]
        ),
        refused + 1.0
    );
    let after = xact_commit(&s.database_url);
    let lookups = statuses.get(&401).copied().unwrap_or(0);
    eprintln!(
        "4,000 bad keys: {statuses:?}, {} database transactions",
        after - before
    );
    assert!(lookups <= 15, "{statuses:?}");
    assert_eq!(lookups + statuses.get(&429).copied().unwrap_or(0), 4000);
    // The psql session itself commits one transaction per reading.
    assert!(
        after - before < 50,
        "4,000 bad keys made {} database transactions ({statuses:?})",
        after - before
    );

    // Control: the same flood without the limit, on the same database, is counted there.
    let open = Server::start_on(
        &s.database_url,
        &[
            ("HALLMARK__DETECTORS__ENABLED", "false"),
            ("HALLMARK__RATE_LIMITS__FAILED_AUTH_PER_MINUTE", "0"),
        ],
    )
    .unwrap();
    let before = after;
    let statuses = flood(&open, 300);
    let after = xact_commit(&s.database_url);
    assert_eq!(statuses.get(&401), Some(&300), "{statuses:?}");
    assert!(after - before >= 300, "control counted {}", after - before);
}

/// One sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn parse_value(v: &str) -> f64 {
    match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => v.parse().unwrap_or_else(|_| panic!("bad value {v:?}")),
    }
}

/// Parses labels `{a="x",b="y"}` (with `\"`, `\\`, `\n` escapes); returns them and the rest.
fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return (labels, s);
    };
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(r) = rest.strip_prefix('}') {
            return (labels, r);
        }
        let (name, r) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad labels {s:?}"));
        assert!(
            valid_name(name) && !name.contains(':'),
            "label name {name:?}"
        );
        let mut value = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("bad escape {other:?} in {s:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {s:?}"),
            }
        };
        assert!(
            labels.insert(name.to_owned(), value).is_none(),
            "duplicate label"
        );
        rest = &r[end + 1..];
    }
}

/// A strict reader of the text exposition format 0.0.4: every sample belongs to a declared
/// family of its type, histogram buckets are cumulative and end at `+Inf` = `_count`.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(c) = line.strip_prefix("# ") {
            let parts: Vec<&str> = c.splitn(3, ' ').collect();
            if parts[0] == "TYPE" {
                assert!(valid_name(parts[1]), "{line}");
                let t = parts[2];
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "{line}"
                );
                assert!(
                    types.insert(parts[1].into(), t.into()).is_none(),
                    "TYPE twice: {line}"
                );
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("{line}"));
        let name = &line[..name_end];
        assert!(valid_name(name), "{line}");
        let (labels, rest) = parse_labels(&line[name_end..]);
        let mut fields = rest.split_whitespace();
        let value = parse_value(fields.next().unwrap_or_else(|| panic!("{line}")));
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .unwrap_or_else(|_| panic!("timestamp in {line}"));
        }
        assert!(fields.next().is_none(), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suf| {
                name.strip_suffix(suf).filter(|f| {
                    types
                        .get(*f)
                        .is_some_and(|t| t == "histogram" || t == "summary")
                })
            })
            .unwrap_or(name);
        let t = types
            .get(family)
            .unwrap_or_else(|| panic!("sample without TYPE: {line}"));
        if t == "counter" {
            assert!(value >= 0.0, "{line}");
        }
        if name.ends_with("_bucket") {
            assert!(labels.contains_key("le"), "{line}");
        }
        samples.push((name.to_owned(), labels, value));
    }
    // Histograms: cumulative buckets, +Inf = _count.
    for (family, t) in &types {
        if t != "histogram" {
            continue;
        }
        let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for (n, l, v) in &samples {
            if *n == format!("{family}_bucket") {
                let mut key = l.clone();
                let le = parse_value(&key.remove("le").unwrap());
                series.entry(key).or_default().push((le, *v));
            }
        }
        for (labels, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family} {labels:?}"
            );
            let last = buckets.last().unwrap();
            assert!(last.0.is_infinite());
            let count = samples
                .iter()
                .find(|(n, l, _)| *n == format!("{family}_count") && *l == labels)
                .unwrap_or_else(|| panic!("{family}_count {labels:?}"));
            assert_eq!(last.1, count.2, "{family} {labels:?}");
        }
    }
    samples
}

fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

fn scrape(s: &Server) -> Vec<Sample> {
    let r = s.get("/metrics", None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    parse_prometheus(&String::from_utf8(r.body).unwrap())
}

#[test]
fn metrics_parse_and_move_under_load() {
    let s = Server::start(
        Backend::Sqlite,
        &[("HALLMARK__DETECTORS__ENABLED", "false")],
    )
    .unwrap();
    let _ = scrape(&s);
    let before = scrape(&s);
    let verify = [
        ("route", "/v1/verify"),
        ("method", "POST"),
        ("status", "201"),
    ];
    let n = 12;
    let mut vid = String::new();
    for i in 0..n {
        let png = encode(&photo(256, 192, 100 + i), ImageFormat::Png);
        let r = s.verify(&png);
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        vid = r.json()["id"].as_str().unwrap().to_owned();
    }
    let d = s.post_json(
        "/v1/decisions",
        Some(&s.admin_key),
        &json!({"verification_id": vid, "action": "label", "policy": "p"}),
    );
    assert_eq!(d.status, 201);
    s.get(MISSING, None).assert_problem(401, "unauthorized");
    assert_eq!(s.get("/no/such/route/123", None).status, 404);
    let after = scrape(&s);

    let moved = |name: &str, labels: &[(&str, &str)]| {
        sum(&after, name, labels) - sum(&before, name, labels)
    };
    assert_eq!(moved("hallmark_http_requests_total", &verify), n as f64);
    assert_eq!(
        moved(
            "hallmark_http_request_duration_seconds_count",
            &[("route", "/v1/verify"), ("method", "POST")]
        ),
        n as f64
    );
    assert!(
        moved(
            "hallmark_http_request_duration_seconds_sum",
            &[("route", "/v1/verify")]
        ) > 0.0
    );
    assert_eq!(moved("hallmark_verdicts_total", &[]), n as f64);
    assert_eq!(
        moved(
            "hallmark_stage_duration_seconds_count",
            &[("stage", "c2pa_validation")]
        ),
        n as f64
    );
    assert_eq!(
        moved(
            "hallmark_stage_duration_seconds_count",
            &[("stage", "watermark_detect")]
        ),
        n as f64
    );
    assert_eq!(
        moved(
            "hallmark_http_requests_total",
            &[("route", "/v1/verifications/{id}"), ("status", "401")]
        ),
        1.0
    );
    // Unmatched paths share one label value: raw paths never become series.
    assert_eq!(
        moved("hallmark_http_requests_total", &[("route", "unmatched")]),
        1.0
    );
    assert!(!after
        .iter()
        .any(|(_, l, _)| l.values().any(|v| v.contains("123"))));
    assert!(sum(&after, "hallmark_audit_tree_size", &[]) >= 1.0);
    assert!(after
        .iter()
        .any(|(n, l, _)| n == "hallmark_db_pool_connections" && l["state"] == "idle"));
    assert!(sum(&after, "hallmark_media_workers", &[]) >= 1.0);
    assert!(sum(&after, "hallmark_media_worker_jobs_capacity", &[]) >= 1.0);
    assert_eq!(sum(&after, "hallmark_media_worker_jobs", &[]), 0.0);
    assert_eq!(sum(&after, "hallmark_jobs_in_flight", &[]), 0.0);
    // The scrape in progress is in flight.
    assert!(
        sum(
            &after,
            "hallmark_http_requests_in_flight",
            &[("route", "/metrics")]
        ) >= 1.0
    );
}

#[test]
fn metrics_scrape_token() {
    let s = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__DETECTORS__ENABLED", "false"),
            ("HALLMARK__METRICS__TOKEN", "scrape-secret"),
        ],
    )
    .unwrap();
    s.get("/metrics", None).assert_problem(401, "unauthorized");
    s.request(
        "GET",
        "/metrics",
        &[("Authorization", "Bearer wrong")],
        None,
    )
    .assert_problem(401, "unauthorized");
    // An API key is not the scrape token.
    s.get("/metrics", Some(&s.admin_key))
        .assert_problem(401, "unauthorized");
    let r = s.request(
        "GET",
        "/metrics",
        &[("Authorization", "Bearer scrape-secret")],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(!parse_prometheus(&String::from_utf8(r.body).unwrap()).is_empty());
}
