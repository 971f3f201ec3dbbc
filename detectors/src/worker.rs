//! One model's worker thread: dynamic batching over a bounded queue, backbone + head
//! inference, per-request logits.
//!
//! Requests arrive already preprocessed (rows of the model's input tensor; the pool does
//! preprocessing on Tokio's blocking threads, so it runs in parallel with inference). The
//! worker takes the first waiting request, then keeps collecting until `max_batch` rows are
//! gathered or `max_wait` has passed since the first one (the dynamic batching of
//! text-embeddings-inference and Triton), runs one batch and replies to each request with the
//! mean logit over its rows.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;
use tokio::sync::oneshot;

use crate::calibration::logit;
use crate::registry::{ModelEntry, OutputKind};
use crate::DetectorError;

/// Preprocessed rows for one request.
pub(crate) struct Request {
    /// Row-major input rows: `rows * row_len` values.
    pub data: Vec<f32>,
    /// Number of rows (crops or windows).
    pub rows: usize,
    /// Deadline after which the request is answered with a timeout unscored.
    pub deadline: Option<Instant>,
    /// Where the mean logit goes.
    pub reply: oneshot::Sender<Result<f32, DetectorError>>,
}

/// Latency and batching statistics of one model, shared with the pool.
#[derive(Default)]
pub(crate) struct Stats {
    pub requests: AtomicU64,
    pub batches: AtomicU64,
    pub rows: AtomicU64,
    pub infer_us: AtomicU64,
    /// Per-request latencies (enqueue to reply), the last 1024, in microseconds.
    pub recent_us: Mutex<VecDeque<u64>>,
}

impl Stats {
    fn record(&self, latency: Duration) {
        let mut q = self
            .recent_us
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if q.len() == 1024 {
            q.pop_front();
        }
        q.push_back(latency.as_micros() as u64);
    }

    /// (p50, p99) of the recent per-request latencies, milliseconds.
    pub fn percentiles_ms(&self) -> Option<(f64, f64)> {
        let q = self
            .recent_us
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if q.is_empty() {
            return None;
        }
        let mut v: Vec<u64> = q.iter().copied().collect();
        v.sort_unstable();
        let at = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize] as f64 / 1000.0;
        Some((at(0.5), at(0.99)))
    }
}

pub(crate) struct Worker {
    pub entry: ModelEntry,
    pub head: Session,
    pub backbone: Option<Session>,
    pub max_batch: usize,
    pub max_wait: Duration,
    pub stats: Arc<Stats>,
    /// Whether the head reads the media tensor itself (a head behind a backbone may read the
    /// backbone's outputs only).
    pub feed_media: bool,
}

struct Pending {
    req: Request,
    enqueued: Instant,
}

impl Worker {
    fn fail(&self, message: String) -> DetectorError {
        DetectorError::Inference {
            model: self.entry.name.clone(),
            message,
        }
    }

    /// Dimensions of a batch of `n` rows of the media input.
    fn dims(&self, n: usize) -> Vec<usize> {
        let mut d: Vec<usize> = self
            .entry
            .input_shape
            .iter()
            .map(|&v| usize::try_from(v).unwrap_or(0))
            .collect();
        if let Some(first) = d.first_mut() {
            *first = n;
        }
        d
    }

    /// Runs the backbone (if any) and the head on `n` rows; returns one logit per row.
    pub fn infer(&mut self, n: usize, data: &[f32]) -> Result<Vec<f32>, DetectorError> {
        let dims = self.dims(n);
        let media = TensorRef::from_array_view((dims.clone(), data))
            .map_err(|e| self.fail(e.to_string()))?;
        let mut feats: Vec<(String, ort::value::DynValue)> = Vec::new();
        if let (Some(bb), Some(spec)) = (self.backbone.as_mut(), self.entry.backbone.as_ref()) {
            let plane = dims.get(2).copied().unwrap_or(0) * dims.get(3).copied().unwrap_or(0);
            let mut norm = data.to_vec();
            for (i, v) in norm.iter_mut().enumerate() {
                let c = (i / plane.max(1)) % 3;
                *v = (*v - spec.mean[c]) / spec.std[c];
            }
            let t = TensorRef::from_array_view((dims.clone(), norm.as_slice())).map_err(|e| {
                DetectorError::Inference {
                    model: self.entry.name.clone(),
                    message: e.to_string(),
                }
            })?;
            let mut outs = bb
                .run(vec![(spec.input.as_str(), SessionInputValue::from(t))])
                .map_err(|e| DetectorError::Inference {
                    model: self.entry.name.clone(),
                    message: format!("backbone: {e}"),
                })?;
            for (o, h) in spec.outputs.iter().zip(&spec.head_inputs) {
                let v = outs.remove(o).ok_or_else(|| DetectorError::Inference {
                    model: self.entry.name.clone(),
                    message: format!("backbone has no output `{o}`"),
                })?;
                feats.push((h.clone(), v));
            }
        }
        let mut inputs: Vec<(String, SessionInputValue<'_>)> = Vec::new();
        if self.feed_media {
            inputs.push((self.entry.input.clone(), SessionInputValue::from(media)));
        }
        for (name, v) in &feats {
            inputs.push((name.clone(), SessionInputValue::from(v)));
        }
        let name = self.entry.name.clone();
        let output = self.entry.output.clone();
        let kind = self.entry.output_kind;
        let fail = |m: String| DetectorError::Inference {
            model: name.clone(),
            message: m,
        };
        let outputs = self.head.run(inputs).map_err(|e| fail(e.to_string()))?;
        let out = outputs
            .get(&output)
            .ok_or_else(|| fail(format!("no output `{output}`")))?;
        let (_, values) = out
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(e.to_string()))?;
        if values.len() != n {
            return Err(fail(format!("expected {n} outputs, got {}", values.len())));
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(fail(format!("non-finite output {v}")));
        }
        Ok(values
            .iter()
            .map(|&v| match kind {
                OutputKind::Logit => v,
                OutputKind::Probability => logit(f64::from(v)) as f32,
            })
            .collect())
    }

    fn run_batch(&mut self, batch: Vec<Pending>) {
        let rows: usize = batch.iter().map(|p| p.req.rows).sum();
        let row_len = batch
            .first()
            .map(|p| p.req.data.len() / p.req.rows.max(1))
            .unwrap_or(0);
        let mut data = Vec::with_capacity(rows * row_len);
        for p in &batch {
            data.extend_from_slice(&p.req.data);
        }
        let started = Instant::now();
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.infer(rows, &data)))
                .unwrap_or_else(|_| Err(self.fail("inference panicked".into())));
        let s = &self.stats;
        s.batches.fetch_add(1, Ordering::Relaxed);
        s.rows.fetch_add(rows as u64, Ordering::Relaxed);
        s.infer_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        tracing::debug!(model = %self.entry.name, rows, requests = batch.len(), elapsed_ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "batch scored");
        let mut offset = 0;
        for p in batch {
            let n = p.req.rows;
            let reply = match &result {
                Ok(v) => Ok(v[offset..offset + n].iter().sum::<f32>() / n as f32),
                Err(e) => Err(self.fail(e.to_string())),
            };
            offset += n;
            s.requests.fetch_add(1, Ordering::Relaxed);
            s.record(p.enqueued.elapsed());
            let _ = p.req.reply.send(reply);
        }
    }

    /// Accepts `req` into `batch` unless its caller is gone or its deadline passed.
    fn admit(batch: &mut Vec<Pending>, req: Request, enqueued: Instant) {
        if req.reply.is_closed() {
            return;
        }
        if req.deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = req.reply.send(Err(DetectorError::Timeout));
            return;
        }
        batch.push(Pending { req, enqueued });
    }

    pub fn run(mut self, rx: Receiver<(Request, Instant)>) {
        while let Ok((first, t0)) = rx.recv() {
            let mut batch = Vec::new();
            Self::admit(&mut batch, first, t0);
            let until = Instant::now() + self.max_wait;
            while batch.iter().map(|p| p.req.rows).sum::<usize>() < self.max_batch {
                let left = until.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok((r, t)) => Self::admit(&mut batch, r, t),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if left.is_zero() {
                    break;
                }
            }
            if !batch.is_empty() {
                self.run_batch(batch);
            }
        }
        tracing::debug!(model = %self.entry.name, "detector worker stopped");
    }
}
