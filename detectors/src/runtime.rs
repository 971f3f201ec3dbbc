//! ONNX Runtime: the execution provider, the process-wide environment, session building.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use serde::{Deserialize, Serialize};

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

pub(crate) fn rt_err(context: &str) -> impl Fn(&dyn std::fmt::Display) -> DetectorError + '_ {
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

pub(crate) fn build_session(
    env: &Environment,
    intra_threads: usize,
    provider: ExecutionProvider,
    model: &str,
    bytes: &[u8],
) -> Result<(Session, ExecutionProvider), DetectorError> {
    let base = || -> Result<ort::session::builder::SessionBuilder, DetectorError> {
        let ctx = format!("session options for `{model}`");
        Session::builder(env)
            .map_err(|e| rt_err(&ctx)(&e))?
            .with_intra_threads(intra_threads)
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
    match provider {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
