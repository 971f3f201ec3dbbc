//! Synthetic-media detectors for Hallmark, run with ONNX Runtime.
//!
//! The models and their registry live in `detectors/models/` and are produced by
//! `training/build_detectors.py` (see `training/README.md` for what they compute and how
//! well they do — they are baselines, not decision-grade classifiers).
//!
//! * `image-residual` — input `image` `[N, 3, 256, 256]` RGB `f32` in `[0, 1]`.
//! * `audio-spectral` — input `audio` `[N, 64000]` mono `f32` in `[-1, 1]` at 16 kHz (4 s).
//! * Both output `score` `[N, 1]`: a sigmoid in `(0, 1)`, higher = more likely synthetic.
//!
//! # Runtime
//! ONNX Runtime is loaded at run time (`ort` `load-dynamic`) from
//! [`DetectorPoolConfig::onnxruntime_path`]; nothing is downloaded at build or run time.
//! `scripts/fetch-onnxruntime.sh` installs the library from the official PyPI wheel into
//! `.runtime/onnxruntime/`.
//!
//! # Concurrency
//! [`DetectorPool`] gives each model a worker thread that owns its `ort::Session`. Requests
//! go through a bounded queue (`try_send`: a full queue fails fast with
//! [`DetectorError::Overloaded`]) and come back on a one-shot channel, so inference and
//! preprocessing (resizing, resampling) never run on the async runtime.
//!
//! # Preprocessing choice
//! Training resized every image to 256×256 and then JPEG-re-encoded it (q90) so the
//! classifier could not learn the container format (see the corpus README). The service
//! does **not** re-encode: it scores the decoded pixels as given, resized the same way.
//! `training/README.md` reports held-out metrics for both pipelines.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hallmark_detectors::DetectorError> {
//! use std::sync::Arc;
//! use hallmark_detectors::{DetectorPool, DetectorPoolConfig};
//! let pool = DetectorPool::load(&DetectorPoolConfig::default())?;
//! let img = Arc::new(image::DynamicImage::new_rgb8(64, 64));
//! for s in pool.score_image(img).await? {
//!     println!("{} v{}: {:.3}", s.model, s.version, s.score);
//! }
//! # Ok(()) }
//! ```

mod error;
mod pool;
pub mod preprocess;
pub mod registry;

pub use error::DetectorError;
pub use pool::{
    init_runtime, DetectorPool, DetectorPoolConfig, DetectorScore, ExecutionProvider, ModelInfo,
};
pub use registry::{ModelEntry, ModelKind, Preprocessing, Registry};
