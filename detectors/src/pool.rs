//! The detector pool: one worker thread per model, bounded queues, async replies.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hallmark_media::AudioClip;
use image::DynamicImage;
use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::preprocess::{audio_windows, image_tensor};
use crate::registry::{ModelEntry, ModelKind, Preprocessing, Registry};
use crate::DetectorError;

/// Where ONNX Runtime executes the models.
///
/// Deserializes from `"cpu"`, `"cuda"` (device 0), `"cuda:<id>"`, or the tagged form
/// `{ cuda = { device_id = 1 } }`; serializes as `"cpu"` / `{ "cuda": { "device_id": 1 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "EpRepr")]
pub enum ExecutionProvider {
    /// ONNX Runtime's default CPU provider.
    #[default]
    Cpu,
    /// NVIDIA CUDA. Needs a CUDA-enabled ONNX Runtime build; the PyPI `onnxruntime` wheel
    /// fetched by `scripts/fetch-onnxruntime.sh` is CPU-only, so the pool falls back to
    /// [`ExecutionProvider::Cpu`] with a warning.
    Cuda {
        /// CUDA device ordinal.
        device_id: i32,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EpRepr {
    Name(String),
    Tagged(EpTagged),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum EpTagged {
    Cpu,
    Cuda {
        #[serde(default)]
        device_id: i32,
    },
}

impl TryFrom<EpRepr> for ExecutionProvider {
    type Error = String;
    fn try_from(r: EpRepr) -> Result<Self, String> {
        match r {
            EpRepr::Tagged(EpTagged::Cpu) => Ok(Self::Cpu),
            EpRepr::Tagged(EpTagged::Cuda { device_id }) => Ok(Self::Cuda { device_id }),
            EpRepr::Name(s) => {
                let s = s.trim().to_ascii_lowercase();
                match s.as_str() {
                    "cpu" => Ok(Self::Cpu),
                    "cuda" => Ok(Self::Cuda { device_id: 0 }),
                    _ => s
                        .strip_prefix("cuda:")
                        .and_then(|id| id.parse().ok())
                        .map(|device_id| Self::Cuda { device_id })
                        .ok_or_else(|| {
                            format!("unknown execution provider `{s}` (cpu | cuda | cuda:<id>)")
                        }),
                }
            }
        }
    }
}

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
}

impl Default for DetectorPoolConfig {
    /// `detectors/models/registry.toml` and `.runtime/onnxruntime/libonnxruntime.so.1.31.1`
    /// (both relative to the working directory, i.e. the repository root), capacity 64,
    /// 1 intra-op thread, CPU, 30 s timeout.
    fn default() -> Self {
        Self {
            registry_path: PathBuf::from("detectors/models/registry.toml"),
            onnxruntime_path: PathBuf::from(".runtime/onnxruntime/libonnxruntime.so.1.31.1"),
            queue_capacity: 64,
            intra_threads: 1,
            execution_provider: ExecutionProvider::Cpu,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A loaded model as reported by [`DetectorPool::models`].
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
    /// Execution provider the session actually runs on.
    pub provider: ExecutionProvider,
    /// Registry description.
    pub description: String,
}

/// One model's verdict on one input.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct DetectorScore {
    /// Registry name of the model.
    pub model: String,
    /// Registry version of the model.
    pub version: String,
    /// Probability-like score in `[0, 1]`; higher = more likely synthetic. Uncalibrated
    /// baseline: see `training/README.md` for measured error rates.
    pub score: f32,
}

#[derive(Clone)]
enum Input {
    Image(Arc<DynamicImage>),
    Audio(Arc<AudioClip>),
}

struct Request {
    input: Input,
    deadline: Option<Instant>,
    reply: oneshot::Sender<Result<f32, DetectorError>>,
}

struct ModelHandle {
    info: ModelInfo,
    tx: SyncSender<Request>,
}

struct Inner {
    models: Vec<ModelHandle>,
    timeout: Duration,
}

/// Runs the registry's detectors off the async runtime.
///
/// Each model gets a dedicated worker thread that owns its ONNX Runtime session and
/// serves requests from a bounded queue; callers await a one-shot reply. Cloning is
/// cheap (an `Arc`); the workers stop when the last clone is dropped.
#[derive(Clone)]
pub struct DetectorPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DetectorPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectorPool")
            .field("models", &self.models())
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

fn rt_err(context: &str) -> impl Fn(&dyn std::fmt::Display) -> DetectorError + '_ {
    move |e| DetectorError::Runtime(format!("{context}: {e}"))
}

/// ONNX Runtime can be loaded once per process; remember which library and environment.
static RUNTIME: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// Loads ONNX Runtime from `path` and creates the process-wide environment, or returns the one
/// created by an earlier call. `ort` allows one environment per process, so every crate that
/// runs ONNX models (detectors, generators) goes through this function. The first successful
/// call wins; a later call with another path logs a warning and returns the existing one.
///
/// # Errors
/// [`DetectorError::RuntimeMissing`] when `path` is not a file (run
/// `scripts/fetch-onnxruntime.sh`), [`DetectorError::Runtime`] when it can't be loaded.
pub fn init_runtime(path: &Path) -> Result<Environment, DetectorError> {
    if !path.is_file() {
        return Err(DetectorError::RuntimeMissing(path.to_path_buf()));
    }
    let abs = path
        .canonicalize()
        .map_err(|e| rt_err("resolving library path")(&e))?;
    let mut guard = RUNTIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((loaded, env)) = guard.as_ref() {
        if *loaded != abs {
            tracing::warn!(
                loaded = %loaded.display(),
                requested = %abs.display(),
                "ONNX Runtime is already loaded in this process; ignoring the new path"
            );
        }
        return Ok(env.clone());
    }
    let env = ort::init_from(&abs)
        .map_err(|e| rt_err(&format!("loading {}", abs.display()))(&e))?
        .with_name("hallmark")
        .with_telemetry(false)
        .build()
        .map_err(|e| rt_err("creating environment")(&e))?;
    tracing::info!(library = %abs.display(), "ONNX Runtime loaded");
    *guard = Some((abs, env.clone()));
    Ok(env)
}

fn build_session(
    env: &Environment,
    cfg: &DetectorPoolConfig,
    model: &str,
    bytes: &[u8],
) -> Result<(Session, ExecutionProvider), DetectorError> {
    let base = || -> Result<ort::session::builder::SessionBuilder, DetectorError> {
        let ctx = format!("session options for `{model}`");
        Session::builder(env)
            .map_err(|e| rt_err(&ctx)(&e))?
            .with_intra_threads(cfg.intra_threads)
            .map_err(|e| rt_err(&ctx)(&e))?
            .with_inter_threads(1)
            .map_err(|e| rt_err(&ctx)(&e))?
            .with_intra_op_spinning(false)
            .map_err(|e| rt_err(&ctx)(&e))
    };
    let commit = |mut b: ort::session::builder::SessionBuilder| {
        b.commit_from_memory(bytes)
            .map_err(|e| rt_err(&format!("loading model `{model}`"))(&e))
    };
    match cfg.execution_provider {
        ExecutionProvider::Cpu => Ok((commit(base()?)?, ExecutionProvider::Cpu)),
        ExecutionProvider::Cuda { device_id } => {
            let cuda = ort::ep::CUDA::default()
                .with_device_id(device_id)
                .build()
                .error_on_failure();
            let attempt = base().and_then(|b| {
                b.with_execution_providers([cuda])
                    .map_err(|e| rt_err("registering CUDA")(&e))
                    .and_then(commit)
            });
            match attempt {
                Ok(s) => Ok((s, ExecutionProvider::Cuda { device_id })),
                Err(e) => {
                    tracing::warn!(model, device_id, error = %e, "CUDA execution provider unavailable; falling back to CPU");
                    Ok((commit(base()?)?, ExecutionProvider::Cpu))
                }
            }
        }
    }
}

/// Maps a queue push to the pool's errors: a full queue is [`DetectorError::Overloaded`].
fn enqueue(tx: &SyncSender<Request>, req: Request, model: &str) -> Result<(), DetectorError> {
    match tx.try_send(req) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => Err(DetectorError::Overloaded),
        Err(TrySendError::Disconnected(_)) => Err(DetectorError::WorkerGone(model.to_owned())),
    }
}

struct Worker {
    entry: ModelEntry,
    session: Session,
}

impl Worker {
    fn infer(
        &mut self,
        shape: [usize; 2],
        dims: &[usize],
        data: &[f32],
    ) -> Result<Vec<f32>, DetectorError> {
        let name = self.entry.name.clone();
        let fail = |m: String| DetectorError::Inference {
            model: name.clone(),
            message: m,
        };
        let tensor =
            TensorRef::from_array_view((dims.to_vec(), data)).map_err(|e| fail(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![self.entry.input.as_str() => tensor])
            .map_err(|e| fail(e.to_string()))?;
        let out = outputs
            .get(&self.entry.output)
            .ok_or_else(|| fail(format!("no output `{}`", self.entry.output)))?;
        let (_, values) = out
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(e.to_string()))?;
        if values.len() != shape[0] * shape[1] {
            return Err(fail(format!(
                "expected {} outputs, got {}",
                shape[0] * shape[1],
                values.len()
            )));
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(fail(format!("non-finite score {v}")));
        }
        Ok(values.iter().map(|v| v.clamp(0.0, 1.0)).collect())
    }

    fn score(&mut self, input: &Input) -> Result<f32, DetectorError> {
        match (self.entry.preprocess, input) {
            (Preprocessing::Image { size }, Input::Image(img)) => {
                let t = image_tensor(img, size)?;
                let s = size as usize;
                let v = self.infer([1, 1], &[1, 3, s, s], &t)?;
                Ok(v[0])
            }
            (
                Preprocessing::Audio {
                    sample_rate,
                    window_samples,
                    max_windows,
                },
                Input::Audio(clip),
            ) => {
                let (t, n) = audio_windows(clip, sample_rate, window_samples, max_windows)?;
                let v = self.infer([n, 1], &[n, window_samples], &t)?;
                Ok(v.iter().sum::<f32>() / n as f32)
            }
            _ => Err(DetectorError::InvalidInput(format!(
                "model `{}` does not score this media kind",
                self.entry.name
            ))),
        }
    }

    fn run(mut self, rx: Receiver<Request>) {
        while let Ok(req) = rx.recv() {
            if req.reply.is_closed() {
                continue; // caller gave up (timeout, overload on a sibling model, dropped future)
            }
            if req.deadline.is_some_and(|d| Instant::now() >= d) {
                let _ = req.reply.send(Err(DetectorError::Timeout));
                continue;
            }
            let started = Instant::now();
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.score(&req.input)))
                    .unwrap_or_else(|_| {
                        Err(DetectorError::Inference {
                            model: self.entry.name.clone(),
                            message: "inference panicked".into(),
                        })
                    });
            tracing::debug!(model = %self.entry.name, elapsed_ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "scored");
            let _ = req.reply.send(result);
        }
        tracing::debug!(model = %self.entry.name, "detector worker stopped");
    }
}

impl DetectorPool {
    /// Loads every model in the registry.
    ///
    /// Steps: parse the registry; read each model file and check its SHA-256; load ONNX
    /// Runtime from `cfg.onnxruntime_path` (once per process); build one session per model
    /// on the requested execution provider (CUDA unavailable ⇒ CPU, with a warning);
    /// start one worker thread per model. A registry without models yields an empty pool
    /// and does not load ONNX Runtime.
    ///
    /// # Errors
    /// [`DetectorError::Registry`] (unreadable/invalid registry or model file),
    /// [`DetectorError::ModelHash`] (digest mismatch, naming the model),
    /// [`DetectorError::RuntimeMissing`] (library absent: run `scripts/fetch-onnxruntime.sh`),
    /// [`DetectorError::Runtime`] (library or model failed to load, input/output names
    /// missing from the graph, thread spawn failure).
    pub fn load(cfg: &DetectorPoolConfig) -> Result<Self, DetectorError> {
        let registry = Registry::load(&cfg.registry_path)?;
        let blobs = registry
            .models
            .iter()
            .map(|m| m.read_verified(&registry.path))
            .collect::<Result<Vec<_>, _>>()?;
        let mut models = Vec::with_capacity(registry.models.len());
        if registry.models.is_empty() {
            tracing::warn!(registry = %registry.path.display(), "detector registry lists no models");
        } else {
            let env = init_runtime(&cfg.onnxruntime_path)?;
            for (entry, bytes) in registry.models.into_iter().zip(blobs) {
                let (session, provider) = build_session(&env, cfg, &entry.name, &bytes)?;
                if !session.inputs().iter().any(|i| i.name() == entry.input)
                    || !session.outputs().iter().any(|o| o.name() == entry.output)
                {
                    return Err(DetectorError::Runtime(format!(
                        "model `{}` lacks input `{}` or output `{}`",
                        entry.name, entry.input, entry.output
                    )));
                }
                let info = ModelInfo {
                    name: entry.name.clone(),
                    version: entry.version.clone(),
                    kind: entry.kind,
                    sha256: entry.sha256.clone(),
                    provider,
                    description: entry.description.clone(),
                };
                let (tx, rx) = sync_channel(cfg.queue_capacity.max(1));
                let worker = Worker { entry, session };
                std::thread::Builder::new()
                    .name(format!("detector-{}", info.name))
                    .spawn(move || worker.run(rx))
                    .map_err(|e| rt_err("spawning worker thread")(&e))?;
                tracing::info!(model = %info.name, version = %info.version, provider = ?info.provider, "detector loaded");
                models.push(ModelHandle { info, tx });
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                models,
                timeout: cfg.timeout,
            }),
        })
    }

    /// The loaded models, in registry order.
    pub fn models(&self) -> Vec<ModelInfo> {
        self.inner.models.iter().map(|m| m.info.clone()).collect()
    }

    /// Scores an image with every image model (registry order).
    ///
    /// The image is converted to RGB and resized to the model's input size (256×256) with
    /// the Triangle filter; any size ≥ 1×1 and any pixel format is accepted. Returns an
    /// empty `Vec` if no image model is loaded. Must be awaited inside a Tokio runtime with
    /// the time driver enabled.
    ///
    /// # Errors
    /// [`DetectorError::Overloaded`] at once if any model's queue is full;
    /// [`DetectorError::Timeout`] after `cfg.timeout`;
    /// [`DetectorError::InvalidInput`] for a 0-pixel image;
    /// [`DetectorError::Inference`] / [`DetectorError::WorkerGone`] on runtime failure.
    pub async fn score_image(
        &self,
        img: Arc<DynamicImage>,
    ) -> Result<Vec<DetectorScore>, DetectorError> {
        self.dispatch(ModelKind::Image, Input::Image(img)).await
    }

    /// Scores an audio clip with every audio model (registry order).
    ///
    /// The clip is mixed to mono (NaN/±inf samples count as 0, values clamped to
    /// `[-1, 1]`), resampled to 16 kHz, cut into at most 8 evenly spread 4 s windows
    /// (the last/short one zero-padded), and the window scores are averaged. Returns an
    /// empty `Vec` if no audio model is loaded. Must be awaited inside a Tokio runtime with
    /// the time driver enabled.
    ///
    /// # Errors
    /// As [`DetectorPool::score_image`]; [`DetectorError::InvalidInput`] for a clip with no
    /// samples or a sample rate outside 1 kHz..=768 kHz.
    pub async fn score_audio(
        &self,
        clip: Arc<AudioClip>,
    ) -> Result<Vec<DetectorScore>, DetectorError> {
        self.dispatch(ModelKind::Audio, Input::Audio(clip)).await
    }

    async fn dispatch(
        &self,
        kind: ModelKind,
        input: Input,
    ) -> Result<Vec<DetectorScore>, DetectorError> {
        let deadline = Instant::now().checked_add(self.inner.timeout);
        let mut pending = Vec::new();
        for m in self.inner.models.iter().filter(|m| m.info.kind == kind) {
            let (reply, rx) = oneshot::channel();
            let req = Request {
                input: input.clone(),
                deadline,
                reply,
            };
            enqueue(&m.tx, req, &m.info.name)?;
            pending.push((m, rx));
        }
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let collect = async {
            let mut out = Vec::with_capacity(pending.len());
            for (m, rx) in pending {
                let score = rx
                    .await
                    .map_err(|_| DetectorError::WorkerGone(m.info.name.clone()))??;
                out.push(DetectorScore {
                    model: m.info.name.clone(),
                    version: m.info.version.clone(),
                    score,
                });
            }
            Ok(out)
        };
        tokio::time::timeout(self.inner.timeout, collect)
            .await
            .unwrap_or(Err(DetectorError::Timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> (Request, oneshot::Receiver<Result<f32, DetectorError>>) {
        let (reply, rx) = oneshot::channel();
        let img = Arc::new(DynamicImage::new_rgb8(1, 1));
        (
            Request {
                input: Input::Image(img),
                deadline: None,
                reply,
            },
            rx,
        )
    }

    #[test]
    fn full_queue_is_overloaded_and_closed_queue_is_worker_gone() {
        let (tx, rx) = sync_channel::<Request>(1);
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
    fn execution_provider_parsing() -> Result<(), Box<dyn std::error::Error>> {
        #[derive(Deserialize)]
        struct C {
            ep: ExecutionProvider,
        }
        let p = |s: &str| toml::from_str::<C>(s).map(|c| c.ep);
        assert_eq!(p(r#"ep = "cpu""#)?, ExecutionProvider::Cpu);
        assert_eq!(
            p(r#"ep = "cuda""#)?,
            ExecutionProvider::Cuda { device_id: 0 }
        );
        assert_eq!(
            p(r#"ep = "cuda:2""#)?,
            ExecutionProvider::Cuda { device_id: 2 }
        );
        assert_eq!(
            p("ep = { cuda = { device_id = 1 } }")?,
            ExecutionProvider::Cuda { device_id: 1 }
        );
        assert!(p(r#"ep = "tpu""#).is_err());
        Ok(())
    }

    #[test]
    fn pool_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<DetectorPool>();
    }
}
