//! Bench: decisions per second acknowledged with receipts (each in a signed checkpoint),
//! N concurrent clients over HTTP against `hallmark serve` on a fresh Postgres database.
//! Prints throughput and latency percentiles; every receipt is verified offline after.
//!
//! ```text
//! cargo build --bins && cargo run -p hallmark-tests --example audit_bench
//! AUDIT_BENCH_CLIENTS=8 AUDIT_BENCH_SECONDS=15 cargo run -p hallmark-tests --example audit_bench
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

fn main() -> anyhow::Result<()> {
    let clients = env_num("AUDIT_BENCH_CLIENTS", 8) as usize;
    let seconds = env_num("AUDIT_BENCH_SECONDS", 15);
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
    let moderator = s.create_key("moderate");
    let vkey = {
        let out = s.cli(&["audit", "public-key"]);
        hallmark_audit::NoteVerifier::parse(String::from_utf8_lossy(&out.stdout).trim())
            .map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let body =
        json!({"verification_id": vid, "action": "label", "policy": "bench-v1", "reason": "bench"});

    let run = |dur: Duration| -> Vec<(Duration, Value)> {
        let deadline = Instant::now() + dur;
        std::thread::scope(|sc| {
            let hs: Vec<_> = (0..clients)
                .map(|_| {
                    let (s, m, b) = (&s, &moderator, &body);
                    sc.spawn(move || {
                        let mut out = Vec::new();
                        while Instant::now() < deadline {
                            let t = Instant::now();
                            let r = s.post_json("/v1/decisions", Some(m), b);
                            let dt = t.elapsed();
                            assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
                            out.push((dt, r.json()["receipt"].clone()));
                        }
                        out
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        })
    };
    run(Duration::from_secs(2)); // warm-up
    let t0 = Instant::now();
    let results = run(Duration::from_secs(seconds));
    let elapsed = t0.elapsed().as_secs_f64();

    let mut lat: Vec<f64> = results.iter().map(|r| r.0.as_secs_f64() * 1e3).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let mut sizes = std::collections::BTreeSet::new();
    let mut verified = 0usize;
    for (_, receipt) in &results {
        let r: hallmark_audit::Receipt = serde_json::from_value(receipt.clone())?;
        let cp = r
            .verify(&vkey)
            .map_err(|e| anyhow::anyhow!("receipt: {e}"))?;
        sizes.insert(cp.size);
        verified += 1;
    }
    println!(
        "audit bench: {clients} clients, {seconds} s, Postgres, {}",
        hallmark_tests::hallmark_bin().display()
    );
    println!("  decisions acknowledged: {}", results.len());
    println!(
        "  throughput:             {:.0} decisions/s",
        results.len() as f64 / elapsed
    );
    println!(
        "  latency ms:             p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat[lat.len() - 1]
    );
    println!(
        "  checkpoints:            {} (mean batch {:.1} entries)",
        sizes.len(),
        results.len() as f64 / sizes.len().max(1) as f64
    );
    println!("  receipts verified offline: {verified}");
    Ok(())
}
