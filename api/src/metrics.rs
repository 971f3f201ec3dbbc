//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4) through the `metrics`
//! facade and `metrics-exporter-prometheus` (no HTTP listener of its own: the service's router
//! serves the rendered text).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `hallmark_http_requests_total` | counter | `method`, `route` (pattern), `status` |
//! | `hallmark_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `hallmark_http_requests_in_flight` | gauge | `route` |
//! | `hallmark_verdicts_total` | counter | `label` |
//! | `hallmark_stage_duration_seconds` | histogram | `stage`: `c2pa_validation`, `watermark_detect`, `detectors_image`, `detectors_audio` |
//! | `hallmark_detector_requests_total`, `hallmark_detector_batches_total` | counter | `model` |
//! | `hallmark_detector_batch_rows_mean`, `hallmark_detector_batch_seconds_mean` | gauge | `model` |
//! | `hallmark_detector_request_seconds` | gauge | `model`, `quantile` (0.5, 0.99; last 1024 requests) |
//! | `hallmark_db_pool_connections` | gauge | `state`: `idle`, `in_use` |
//! | `hallmark_audit_tree_size` | gauge | — (size of the latest signed checkpoint) |
//! | `hallmark_media_workers` | gauge | — (worker processes) |
//! | `hallmark_media_worker_jobs`, `hallmark_media_worker_jobs_capacity` | gauge | — (jobs running or queued for a worker; beyond capacity: 503 `overloaded`) |
//! | `hallmark_jobs_in_flight` | gauge | — (sign/verify jobs holding a `server.max_concurrent_jobs` slot) |
//! | `hallmark_rate_limited_total` | counter | `reason`: `key`, `failed_auth` |
//!
//! Without an installed recorder (the CLI) every macro is a no-op.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets, seconds: 1 ms … 60 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
///
/// # Errors
/// Another recorder is already installed.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// The installed handle, if any.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get()
}

/// Awaits `f`, recording its duration under `hallmark_stage_duration_seconds{stage}`.
pub async fn timed<F: Future>(stage: &'static str, f: F) -> F::Output {
    let t = Instant::now();
    let out = f.await;
    metrics::histogram!("hallmark_stage_duration_seconds", "stage" => stage)
        .record(t.elapsed().as_secs_f64());
    out
}

/// Counts a verdict.
pub fn verdict(label: &str) {
    metrics::counter!("hallmark_verdicts_total", "label" => label.to_owned()).increment(1);
}

/// Counts a request refused by a rate limit (`key`, `failed_auth`, `uploads_per_key`,
/// `upload_budget`, `slow_body`).
pub fn rate_limited(reason: &'static str) {
    metrics::counter!("hallmark_rate_limited_total", "reason" => reason).increment(1);
}

/// Marks one request to `route` in flight until the guard drops, then records it.
pub struct RequestTimer {
    method: String,
    route: String,
    start: Instant,
}

impl RequestTimer {
    /// Starts timing a request.
    pub fn start(method: &str, route: &str) -> Self {
        metrics::gauge!("hallmark_http_requests_in_flight", "route" => route.to_owned())
            .increment(1.0);
        Self {
            method: method.to_owned(),
            route: route.to_owned(),
            start: Instant::now(),
        }
    }

    /// Records the response status (the in-flight gauge drops with the guard).
    pub fn finish(&self, status: u16) {
        metrics::counter!(
            "hallmark_http_requests_total",
            "method" => self.method.clone(),
            "route" => self.route.clone(),
            "status" => status.to_string()
        )
        .increment(1);
        metrics::histogram!(
            "hallmark_http_request_duration_seconds",
            "method" => self.method.clone(),
            "route" => self.route.clone()
        )
        .record(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        metrics::gauge!("hallmark_http_requests_in_flight", "route" => self.route.clone())
            .decrement(1.0);
    }
}

/// Samples what is read at scrape time (pool use, audit tree size, detector statistics), then
/// renders the exposition text.
pub async fn render(state: &AppState) -> String {
    let Some(h) = handle() else {
        return String::new();
    };
    let (size, idle) = state.store.pool_usage();
    let idle = idle as f64;
    metrics::gauge!("hallmark_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("hallmark_db_pool_connections", "state" => "in_use")
        .set((f64::from(size) - idle).max(0.0));
    metrics::gauge!("hallmark_media_workers").set(state.workers.size() as f64);
    let (admitted, capacity) = state.workers.load();
    metrics::gauge!("hallmark_media_worker_jobs").set(admitted as f64);
    metrics::gauge!("hallmark_media_worker_jobs_capacity").set(capacity as f64);
    let max_jobs = state.settings.server.max_concurrent_jobs.max(1);
    metrics::gauge!("hallmark_jobs_in_flight")
        .set(max_jobs.saturating_sub(state.jobs.available_permits()) as f64);
    if let Ok(Some(cp)) = state.audit.latest_checkpoint().await {
        metrics::gauge!("hallmark_audit_tree_size").set(cp.tree_size as f64);
    }
    if let Some(pool) = &state.detectors {
        for m in pool.models() {
            let s = &m.stats;
            let name = m.name.clone();
            metrics::counter!("hallmark_detector_requests_total", "model" => name.clone())
                .absolute(s.requests);
            metrics::counter!("hallmark_detector_batches_total", "model" => name.clone())
                .absolute(s.batches);
            metrics::gauge!("hallmark_detector_batch_rows_mean", "model" => name.clone())
                .set(s.mean_batch_rows);
            metrics::gauge!("hallmark_detector_batch_seconds_mean", "model" => name.clone())
                .set(s.mean_batch_ms / 1000.0);
            for (q, v) in [("0.5", s.p50_ms), ("0.99", s.p99_ms)] {
                if let Some(v) = v {
                    metrics::gauge!("hallmark_detector_request_seconds", "model" => name.clone(), "quantile" => q)
                        .set(v / 1000.0);
                }
            }
        }
    }
    h.run_upkeep();
    h.render()
}
