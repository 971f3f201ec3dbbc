//! Bench: decisions per second acknowledged with receipts (each in a signed, stored
//! checkpoint) over HTTP against `hallmark serve` on a fresh Postgres database, 8 clients
//! (one moderator API key each). Every mode runs in the same process against the same
//! server, so the single-decision modes are the reference for the batch modes.
//!
//! A mode `BxF` is: each client keeps `F` requests in flight (one connection each), each
//! request carries `B` decisions (`B = 1`: `POST /v1/decisions`; `B > 1`:
//! `POST /v1/decisions/batch`). Latency is per request (send to `201` with all receipts).
//! Every receipt is verified offline afterwards.
//!
//! ```text
//! cargo build --bins && cargo run -p hallmark-tests --example audit_bench
//! AUDIT_BENCH_MODES=1x1,1x8,25x1,25x4 AUDIT_BENCH_CLIENTS=8 AUDIT_BENCH_SECONDS=10 \
//!     HALLMARK_BIN=target/release/hallmark cargo run -p hallmark-tests --example audit_bench
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use hallmark_tests::{Backend, Server};
use serde_json::{json, Value};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// CPU seconds (user + system) of process `pid` so far.
fn cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let t = rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?;
            Some(t / 100.0)
        })
        .unwrap_or(0.0)
}

/// CPU seconds of the Postgres backends serving database `db` (their command line names it).
fn postgres_cpu_seconds(db: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(db))
                .unwrap_or(false)
        })
        .map(|p| cpu_seconds(&p))
        .sum()
}

/// CPU seconds of the server, its Postgres backends and this client process.
#[derive(Clone, Copy)]
struct Cpu {
    server: f64,
    postgres: f64,
    client: f64,
}

fn cpu(s: &Server) -> Cpu {
    let db = s.database_url.rsplit('/').next().unwrap_or_default();
    Cpu {
        server: cpu_seconds(&s.pid().to_string()),
        postgres: postgres_cpu_seconds(db),
        client: cpu_seconds("self"),
    }
}

struct Mode {
    batch: usize,
    in_flight: usize,
}

fn modes() -> Vec<Mode> {
    let spec = std::env::var("AUDIT_BENCH_MODES").unwrap_or_else(|_| "1x1,1x8,25x1,25x4".into());
    spec.split(',')
        .map(|m| {
            let (b, f) = m.trim().split_once('x').expect("mode BxF, e.g. 25x4");
            let batch: usize = b.parse().expect("B");
            let in_flight: usize = f.parse().expect("F");
            assert!((1..=100).contains(&batch) && in_flight >= 1, "mode {m}");
            Mode { batch, in_flight }
        })
        .collect()
}

/// One request's latency and the receipts it carried.
type Sample = (Duration, Vec<Value>);

fn run(s: &Server, keys: &[String], mode: &Mode, body: &Value, dur: Duration) -> Vec<Sample> {
    let deadline = Instant::now() + dur;
    let (path, payload) = if mode.batch == 1 {
        ("/v1/decisions", body.clone())
    } else {
        (
            "/v1/decisions/batch",
            json!({ "decisions": vec![body.clone(); mode.batch] }),
        )
    };
    std::thread::scope(|sc| {
        let hs: Vec<_> = keys
            .iter()
            .flat_map(|k| (0..mode.in_flight).map(move |_| k))
            .map(|key| {
                let payload = &payload;
                sc.spawn(move || {
                    // One connection per in-flight request (a shared agent keeps only a few
                    // idle connections per host and would reconnect).
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let url = format!("{}{path}", s.base);
                    let body = payload.to_string();
                    let mut out = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let mut r = agent
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .header("Authorization", format!("Bearer {key}"))
                            .send(body.as_bytes())
                            .unwrap();
                        let text = r.body_mut().read_to_string().unwrap();
                        let dt = t.elapsed();
                        assert_eq!(r.status().as_u16(), 201, "{text}");
                        let j: Value = serde_json::from_str(&text).unwrap();
                        let receipts = if mode.batch == 1 {
                            vec![j["receipt"].clone()]
                        } else {
                            j["decisions"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|d| d["receipt"].clone())
                                .collect()
                        };
                        assert_eq!(receipts.len(), mode.batch);
                        out.push((dt, receipts));
                    }
                    out
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

fn report(
    mode: &Mode,
    clients: usize,
    samples: &[Sample],
    elapsed: f64,
    cpu: (Cpu, Cpu),
    vkey: &hallmark_audit::NoteVerifier,
) -> anyhow::Result<()> {
    let mut lat: Vec<f64> = samples.iter().map(|r| r.0.as_secs_f64() * 1e3).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let mut sizes = std::collections::BTreeSet::new();
    let mut verified = 0usize;
    for receipt in samples.iter().flat_map(|s| &s.1) {
        let r: hallmark_audit::Receipt = serde_json::from_value(receipt.clone())?;
        let cp = r
            .verify(vkey)
            .map_err(|e| anyhow::anyhow!("receipt: {e}"))?;
        sizes.insert(cp.size);
        verified += 1;
    }
    let us_per_decision = |a: f64, b: f64| (b - a) * 1e6 / verified.max(1) as f64;
    let (c0, c1) = cpu;
    println!(
        "| {}x{} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {:.0} / {:.0} / {:.0} | {} |",
        mode.batch,
        mode.in_flight,
        clients * mode.in_flight,
        verified as f64 / elapsed,
        samples.len() as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat[lat.len() - 1],
        sizes.len(),
        verified as f64 / sizes.len().max(1) as f64,
        us_per_decision(c0.server, c1.server),
        us_per_decision(c0.postgres, c1.postgres),
        us_per_decision(c0.client, c1.client),
        verified,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let clients = env_num("AUDIT_BENCH_CLIENTS", 8) as usize;
    let seconds = env_num("AUDIT_BENCH_SECONDS", 10);
    let load_before = loadavg();
    let s = Server::start(
        Backend::Postgres,
        &[
            ("HALLMARK__DETECTORS__ENABLED", "false"),
            ("HALLMARK_LOG", "error"),
        ],
    )?;
    let vid = "0190f000-0000-7000-8000-000000000001";
    s.execute_sql(&format!(
        "INSERT INTO verifications (id, created_at, sha256, media_type, asset_id, requested_by, report) \
         VALUES ('{vid}', '2026-12-07T00:00:00.000Z', '{}', 'image/png', NULL, 'bench', '{{}}')",
        "ab".repeat(32)
    ))?;
    let keys: Vec<String> = (0..clients).map(|_| s.create_key("moderate")).collect();
    let vkey = {
        let out = s.cli(&["audit", "public-key"]);
        hallmark_audit::NoteVerifier::parse(String::from_utf8_lossy(&out.stdout).trim())
            .map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let body =
        json!({"verification_id": vid, "action": "label", "policy": "bench-v1", "reason": "bench"});
    println!(
        "audit bench: {clients} clients (one moderator key each), {seconds} s per mode, Postgres, {}",
        hallmark_tests::hallmark_bin().display()
    );
    println!("load average before: {load_before}");
    println!(
        "| mode BxF | connections | decisions/s | requests/s | p50 ms | p90 ms | p99 ms | max ms | checkpoints | decisions/checkpoint | CPU µs/decision server / postgres / client | receipts verified |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for mode in modes() {
        run(&s, &keys, &mode, &body, Duration::from_secs(2)); // warm-up
        let (t0, c0) = (Instant::now(), cpu(&s));
        let samples = run(&s, &keys, &mode, &body, Duration::from_secs(seconds));
        let elapsed = t0.elapsed().as_secs_f64();
        let c1 = cpu(&s);
        report(&mode, clients, &samples, elapsed, (c0, c1), &vkey)?;
    }
    println!("load average after: {}", loadavg());
    Ok(())
}
