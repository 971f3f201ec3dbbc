//! The detector pool: one batching worker thread per model, bounded queues, async replies.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_media::AudioClip;
use image::DynamicImage;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::calibration::{Band, Calibration, Detection, DetectorScore};
use crate::preprocess::{audio_unfit, audio_windows, image_crops, image_tensor};
use crate::registry::{read_verified, ModelEntry, ModelKind, OutputKind, Preprocessing, Registry};
use crate::runtime::{build_session, init_runtime, rt_err, ExecutionProvider};
use crate::worker::{Request, Stats, Worker};
use crate::DetectorError;

/// Configuration of a [`DetectorPool`].
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorPoolConfig {
    /// Model registry (TOML). Model files are resolved relative to it.
    pub registry_path: PathBuf,
    /// ONNX Runtime shared library (`libonnxruntime.so.1.31.1`), as installed by
    /// `scripts/fetch-onnxruntime.sh`. ONNX Runtime is loaded once per process: the first
    /// pool's path wins, later pools reuse that library.
    pub onnxruntime_path: PathBuf,
    /// Requests that may wait per model (values below 1 are treated as 1). When a queue is
    /// full, requests fail at once with [`DetectorError::Overloaded`].
    pub queue_capacity: usize,
    /// ONNX Runtime intra-op threads per model session (0 = ONNX Runtime's default, one per
    /// core).
    pub intra_threads: usize,
    /// Requested execution provider (falls back to CPU if unavailable).
    pub execution_provider: ExecutionProvider,
    /// End-to-end limit for one `score_*` call, queueing included.
    pub timeout: Duration,
    /// Most input rows (crops, windows) per batch (values below 1 are treated as 1).
    pub max_batch: usize,
    /// Longest a batch waits for more requests after its first one.
    pub max_wait: Duration,
}

impl Default for DetectorPoolConfig {
    /// `detectors/models/registry.toml` and `.runtime/onnxruntime/libonnxruntime.so.1.31.1`
    /// (both relative to the working directory, i.e. the repository root), capacity 64,
    /// 1 intra-op thread, CPU, 30 s timeout, batches of up to 16 rows, 5 ms wait.
    fn default() -> Self {
        Self {
            registry_path: PathBuf::from("detectors/models/registry.toml"),
            onnxruntime_path: PathBuf::from(".runtime/onnxruntime/libonnxruntime.so.1.31.1"),
            queue_capacity: 64,
            intra_threads: 1,
            execution_provider: ExecutionProvider::Cpu,
            timeout: Duration::from_secs(30),
            max_batch: 16,
            max_wait: Duration::from_millis(5),
        }
    }
}

/// Batching and latency statistics of a model since load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStats {
    /// Requests answered.
    pub requests: u64,
    /// Batches run.
    pub batches: u64,
    /// Mean input rows per batch.
    pub mean_batch_rows: f64,
    /// Mean inference time per batch, milliseconds.
    pub mean_batch_ms: f64,
    /// Median request latency (queue + inference) over the last 1024 requests, ms.
    pub p50_ms: Option<f64>,
    /// 99th-percentile request latency over the last 1024 requests, ms.
    pub p99_ms: Option<f64>,
}

/// A loaded model as reported by [`DetectorPool::models`] (and `GET /v1/models`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// Registry name.
    pub name: String,
    /// Registry version.
    pub version: String,
    /// Media kind.
    pub kind: ModelKind,
    /// Verified SHA-256 of the model file (lower-case hex).
    pub sha256: String,
    /// Verified SHA-256 of the backbone file, if the model has one.
    pub backbone_sha256: Option<String>,
    /// Execution provider the session actually runs on.
    pub provider: ExecutionProvider,
    /// Registry description.
    pub description: String,
    /// Licence of the weights.
    pub license: String,
    /// What the model's output means.
    pub output_kind: OutputKind,
    /// Preprocessing.
    pub preprocess: Preprocessing,
    /// Calibration and thresholds.
    pub calibration: Calibration,
    /// Most rows per batch and the batching wait, ms.
    pub max_batch: usize,
    /// Longest batching wait, ms.
    pub max_wait_ms: u64,
    /// Statistics since load.
    pub stats: ModelStats,
}

struct ModelHandle {
    entry: ModelEntry,
    info: ModelInfo,
    stats: Arc<Stats>,
    tx: SyncSender<(Request, Instant)>,
}

struct Inner {
    models: Vec<ModelHandle>,
    timeout: Duration,
}

/// Runs the registry's detectors off the async runtime.
///
/// Each model gets a dedicated worker thread that owns its ONNX Runtime session(s) and
/// serves dynamically batched requests from a bounded queue; preprocessing runs on Tokio's
/// blocking threads; callers await a one-shot reply. Cloning is cheap (an `Arc`); the
/// workers stop when the last clone is dropped.
#[derive(Clone)]
pub struct DetectorPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DetectorPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectorPool")
            .field("models", &self.inner.models.len())
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// Maps a queue push to the pool's errors: a full queue is [`DetectorError::Overloaded`].
fn enqueue(
    tx: &SyncSender<(Request, Instant)>,
    req: Request,
    model: &str,
) -> Result<(), DetectorError> {
    match tx.try_send((req, Instant::now())) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => Err(DetectorError::Overloaded),
        Err(TrySendError::Disconnected(_)) => Err(DetectorError::WorkerGone(model.to_owned())),
    }
}

#[derive(Clone)]
enum Input {
    Image(Arc<DynamicImage>),
    Audio(Arc<AudioClip>),
}

/// The model's input rows for `input`, or why it can't judge it (`Ok(Err(reason))`).
fn prepare(
    entry: &ModelEntry,
    input: &Input,
) -> Result<Result<(Vec<f32>, usize), String>, DetectorError> {
    match (entry.preprocess, input) {
        (Preprocessing::Image { size, min_side }, Input::Image(img)) => {
            if img.width().min(img.height()) < min_side {
                return Ok(Err(too_small(img, min_side)));
            }
            Ok(Ok((image_tensor(img, size)?, 1)))
        }
        (
            Preprocessing::Crops {
                size,
                max_short_side,
                crops,
                jpeg_quality,
                min_side,
            },
            Input::Image(img),
        ) => {
            if img.width().min(img.height()) < min_side {
                return Ok(Err(too_small(img, min_side)));
            }
            Ok(Ok(image_crops(
                img,
                size,
                max_short_side,
                crops,
                jpeg_quality,
            )?))
        }
        (
            Preprocessing::Audio {
                sample_rate,
                window_samples,
                max_windows,
                min_seconds,
                min_rms_dbfs,
            },
            Input::Audio(clip),
        ) => {
            if let Some(reason) = audio_unfit(clip, min_seconds, min_rms_dbfs) {
                return Ok(Err(reason));
            }
            Ok(Ok(audio_windows(
                clip,
                sample_rate,
                window_samples,
                max_windows,
            )?))
        }
        _ => Err(DetectorError::InvalidInput(format!(
            "model `{}` does not score this media kind",
            entry.name
        ))),
    }
}

fn too_small(img: &DynamicImage, min_side: u32) -> String {
    format!(
        "image of {}x{} px is below the {min_side} px detectors need",
        img.width(),
        img.height()
    )
}

impl DetectorPool {
    /// Loads every model in the registry.
    ///
    /// Steps: parse the registry; read each model file (and backbone file) and check its
    /// SHA-256; load ONNX Runtime from `cfg.onnxruntime_path` (once per process); build the
    /// sessions on the requested execution provider (CUDA unavailable ⇒ CPU, with a warning);
    /// check that every declared input and output exists and that the media input's shape
    /// matches the registry; start one worker thread per model and warm it up with one
    /// batch. A registry without models yields an empty pool and does not load ONNX Runtime.
    ///
    /// # Errors
    /// [`DetectorError::Registry`] (unreadable/invalid registry or model file),
    /// [`DetectorError::ModelHash`] (digest mismatch, naming the model),
    /// [`DetectorError::RuntimeMissing`] (library absent: run `scripts/fetch-onnxruntime.sh`),
    /// [`DetectorError::Runtime`] (library or model failed to load — e.g. a file that is not
    /// ONNX —, names or shapes that disagree with the registry, warm-up failure).
    pub fn load(cfg: &DetectorPoolConfig) -> Result<Self, DetectorError> {
        let registry = Registry::load(&cfg.registry_path)?;
        let mut blobs = Vec::with_capacity(registry.models.len());
        for m in &registry.models {
            let head = m.read_verified(&registry.path)?;
            let bb = match &m.backbone {
                Some(b) => Some(read_verified(&m.name, &b.file, &b.sha256, &registry.path)?),
                None => None,
            };
            blobs.push((head, bb));
        }
        let mut models = Vec::with_capacity(registry.models.len());
        if registry.models.is_empty() {
            tracing::warn!(registry = %registry.path.display(), "detector registry lists no models");
        } else {
            let env = init_runtime(&cfg.onnxruntime_path)?;
            let threads = cfg.intra_threads;
            for (entry, (head_bytes, bb_bytes)) in registry.models.into_iter().zip(blobs) {
                let (head, provider) = build_session(
                    &env,
                    threads,
                    cfg.execution_provider,
                    &entry.name,
                    &head_bytes,
                )?;
                let backbone = match &bb_bytes {
                    Some(b) => Some(
                        build_session(&env, threads, cfg.execution_provider, &entry.name, b)?.0,
                    ),
                    None => None,
                };
                check_graph(&entry, &head, backbone.as_ref())?;
                let feed_media = head.inputs().iter().any(|i| i.name() == entry.input);
                let stats = Arc::new(Stats::default());
                let max_batch = cfg.max_batch.max(1);
                let info = ModelInfo {
                    name: entry.name.clone(),
                    version: entry.version.clone(),
                    kind: entry.kind,
                    sha256: entry.sha256.clone(),
                    backbone_sha256: entry.backbone.as_ref().map(|b| b.sha256.clone()),
                    provider,
                    description: entry.description.clone(),
                    license: entry.license.clone(),
                    output_kind: entry.output_kind,
                    preprocess: entry.preprocess,
                    calibration: entry.calibration.clone(),
                    max_batch,
                    max_wait_ms: cfg.max_wait.as_millis() as u64,
                    stats: empty_stats(),
                };
                let mut worker = Worker {
                    entry: entry.clone(),
                    head,
                    backbone,
                    max_batch,
                    max_wait: cfg.max_wait,
                    stats: stats.clone(),
                    feed_media,
                };
                // Warm-up: one row of zeros through the whole graph (allocations, kernels).
                let row: usize = worker.entry.input_shape[1..]
                    .iter()
                    .map(|&d| usize::try_from(d).unwrap_or(0))
                    .product();
                worker
                    .infer(1, &vec![0.0; row])
                    .map_err(|e| DetectorError::Runtime(format!("warm-up failed: {e}")))?;
                let (tx, rx) = sync_channel(cfg.queue_capacity.max(1));
                std::thread::Builder::new()
                    .name(format!("detector-{}", info.name))
                    .spawn(move || worker.run(rx))
                    .map_err(|e| rt_err("spawning worker thread")(&e))?;
                tracing::info!(model = %info.name, version = %info.version, provider = ?info.provider, "detector loaded");
                models.push(ModelHandle {
                    entry,
                    info,
                    stats,
                    tx,
                });
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                models,
                timeout: cfg.timeout,
            }),
        })
    }

    /// The loaded models, in registry order, with their statistics.
    pub fn models(&self) -> Vec<ModelInfo> {
        self.inner
            .models
            .iter()
            .map(|m| {
                let mut info = m.info.clone();
                let s = &m.stats;
                let batches = s.batches.load(Ordering::Relaxed);
                let pct = s.percentiles_ms();
                info.stats = ModelStats {
                    requests: s.requests.load(Ordering::Relaxed),
                    batches,
                    mean_batch_rows: s.rows.load(Ordering::Relaxed) as f64 / batches.max(1) as f64,
                    mean_batch_ms: s.infer_us.load(Ordering::Relaxed) as f64
                        / 1000.0
                        / batches.max(1) as f64,
                    p50_ms: pct.map(|p| p.0),
                    p99_ms: pct.map(|p| p.1),
                };
                info
            })
            .collect()
    }

    /// Scores an image with every image model and combines the results.
    ///
    /// Each model's preprocessing comes from the registry (see [`Preprocessing`]); images
    /// smaller than a model's `min_side` are not scored and yield `no_signal` with a note.
    /// Returns [`Detection::no_signal`] if no image model is loaded. Must be awaited inside
    /// a Tokio runtime with the time driver enabled.
    ///
    /// # Errors
    /// [`DetectorError::Overloaded`] at once if any model's queue is full;
    /// [`DetectorError::Timeout`] after `cfg.timeout`;
    /// [`DetectorError::InvalidInput`] for a 0-pixel image;
    /// [`DetectorError::Inference`] / [`DetectorError::WorkerGone`] on runtime failure.
    pub async fn score_image(&self, img: Arc<DynamicImage>) -> Result<Detection, DetectorError> {
        self.dispatch(ModelKind::Image, Input::Image(img)).await
    }

    /// Scores an audio clip with every audio model and combines the results.
    ///
    /// Clips shorter than a model's `min_seconds` or quieter than its `min_rms_dbfs` are not
    /// scored and yield `no_signal` with a note.
    ///
    /// # Errors
    /// As [`DetectorPool::score_image`]; [`DetectorError::InvalidInput`] for a clip with no
    /// samples or a sample rate outside 1 kHz..=768 kHz.
    pub async fn score_audio(&self, clip: Arc<AudioClip>) -> Result<Detection, DetectorError> {
        self.dispatch(ModelKind::Audio, Input::Audio(clip)).await
    }

    async fn dispatch(&self, kind: ModelKind, input: Input) -> Result<Detection, DetectorError> {
        let deadline = Instant::now().checked_add(self.inner.timeout);
        let run = async {
            let mut pending = Vec::new();
            let mut unfit = None;
            for m in self.inner.models.iter().filter(|m| m.info.kind == kind) {
                let (entry, inp) = (m.entry.clone(), input.clone());
                let prepared = tokio::task::spawn_blocking(move || prepare(&entry, &inp))
                    .await
                    .map_err(|_| DetectorError::WorkerGone(m.info.name.clone()))??;
                let (data, rows) = match prepared {
                    Ok(p) => p,
                    Err(reason) => {
                        unfit = Some(reason);
                        continue;
                    }
                };
                let (reply, rx) = oneshot::channel();
                let req = Request {
                    data,
                    rows,
                    deadline,
                    reply,
                };
                enqueue(&m.tx, req, &m.info.name)?;
                pending.push((m, rx));
            }
            let mut out = Vec::with_capacity(pending.len());
            for (m, rx) in pending {
                let logit = rx
                    .await
                    .map_err(|_| DetectorError::WorkerGone(m.info.name.clone()))??;
                let cal = &m.entry.calibration;
                let p = cal.probability(f64::from(logit));
                out.push(DetectorScore {
                    model: m.info.name.clone(),
                    version: m.info.version.clone(),
                    score: p as f32,
                    logit,
                    band: cal.band(p),
                    threshold: cal.threshold_likely_synthetic as f32,
                    fpr_target: cal.fpr_target as f32,
                });
            }
            Ok(match (out.is_empty(), unfit) {
                (true, Some(reason)) => Detection::no_signal(reason),
                (_, reason) => {
                    let mut d = Detection::combine(out);
                    if let Some(r) = reason {
                        // Some models could not judge the input: never claim more than
                        // `inconclusive` from the rest.
                        d.band = d.band.min(Band::Inconclusive);
                        d.note = Some(r);
                    }
                    d
                }
            })
        };
        tokio::time::timeout(self.inner.timeout, run)
            .await
            .unwrap_or(Err(DetectorError::Timeout))
    }
}

fn empty_stats() -> ModelStats {
    ModelStats {
        requests: 0,
        batches: 0,
        mean_batch_rows: 0.0,
        mean_batch_ms: 0.0,
        p50_ms: None,
        p99_ms: None,
    }
}

/// Checks that the sessions have every input and output the registry names, and that the
/// media input's non-batch dimensions match.
fn check_graph(
    entry: &ModelEntry,
    head: &ort::session::Session,
    backbone: Option<&ort::session::Session>,
) -> Result<(), DetectorError> {
    let bad = |m: String| DetectorError::Runtime(format!("model `{}`: {m}", entry.name));
    let has_in = |s: &ort::session::Session, n: &str| s.inputs().iter().any(|i| i.name() == n);
    let has_out = |s: &ort::session::Session, n: &str| s.outputs().iter().any(|o| o.name() == n);
    if entry.backbone.is_none() && !has_in(head, &entry.input) {
        return Err(bad(format!("the graph has no input `{}`", entry.input)));
    }
    if !has_out(head, &entry.output) {
        return Err(bad(format!("the graph has no output `{}`", entry.output)));
    }
    let media_session = if entry.backbone.is_some() {
        backbone
    } else {
        Some(head)
    };
    let media_input = entry
        .backbone
        .as_ref()
        .map_or(entry.input.as_str(), |b| b.input.as_str());
    if let Some(inp) =
        media_session.and_then(|s| s.inputs().iter().find(|i| i.name() == media_input))
    {
        if let Some(dims) = inp.dtype().tensor_shape() {
            let declared: Vec<i64> = dims.iter().copied().collect();
            let ok = declared.len() == entry.input_shape.len()
                && declared
                    .iter()
                    .zip(&entry.input_shape)
                    .skip(1)
                    .all(|(g, r)| *g < 0 || g == r);
            if !ok {
                return Err(bad(format!(
                    "input `{media_input}` has shape {declared:?} in the graph but {:?} in the registry",
                    entry.input_shape
                )));
            }
        }
    }
    if let (Some(spec), Some(bb)) = (&entry.backbone, backbone) {
        if !has_in(bb, &spec.input) {
            return Err(bad(format!("the backbone has no input `{}`", spec.input)));
        }
        for (o, h) in spec.outputs.iter().zip(&spec.head_inputs) {
            if !has_out(bb, o) {
                return Err(bad(format!("the backbone has no output `{o}`")));
            }
            if !has_in(head, h) {
                return Err(bad(format!(
                    "the graph has no input `{h}` for the backbone"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> (Request, oneshot::Receiver<Result<f32, DetectorError>>) {
        let (reply, rx) = oneshot::channel();
        (
            Request {
                data: vec![0.0; 4],
                rows: 1,
                deadline: None,
                reply,
            },
            rx,
        )
    }

    #[test]
    fn full_queue_is_overloaded_and_closed_queue_is_worker_gone() {
        let (tx, rx) = sync_channel::<(Request, Instant)>(1);
        assert!(enqueue(&tx, request().0, "m").is_ok());
        assert!(matches!(
            enqueue(&tx, request().0, "m"),
            Err(DetectorError::Overloaded)
        ));
        drop(rx);
        assert!(
            matches!(enqueue(&tx, request().0, "m"), Err(DetectorError::WorkerGone(n)) if n == "m")
        );
    }

    #[test]
    fn pool_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<DetectorPool>();
    }
}
