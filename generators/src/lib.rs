//! hallmark-generators — content generation from registered ONNX generator models.
//!
//! Hallmark can generate content itself; the result is signed and watermarked exactly like
//! provider-submitted media (the HTTP layer does that, this crate only produces pixels).
//!
//! Generators are listed in a registry file (`generators/models/registry.toml`, see
//! [`registry`]) written by `training/build_generators.py`. Each model file is pinned by
//! SHA-256 and verified before ONNX Runtime sees it.
//!
//! # The built-in generator: `cppn-abstract` v1
//!
//! A Compositional Pattern-Producing Network — K. O. Stanley, "Compositional pattern
//! producing networks: A novel abstraction of development", *Genetic Programming and
//! Evolvable Machines* 8(2):131–162, 2007. A small MLP maps each pixel's coordinates plus a
//! latent vector to a colour:
//!
//! * input `coords`: float32 `[N, 3]`, one row per pixel, columns `(x, y, r)` (see
//!   [`pixel_coords`]);
//! * input `latent`: float32 `[1, 16]`, standard-normal (see [`seed_to_latent`]);
//! * graph: concat(coords, latent broadcast to `[N, 16]`) → dense 19→32 tanh → 32→32 sin →
//!   32→32 tanh → 32→32 sin → 32→3 sigmoid;
//! * output `rgb`: float32 `[N, 3]` in `(0, 1)`, same pixel order as `coords`.
//!
//! Weights are untrained, drawn once from a seeded RNG (numpy `default_rng(2007)`). The
//! image is a continuous function of the coordinates, so a seed gives the same picture at
//! every resolution (and, when width ≠ height, the picture is stretched, not cropped).
//!
//! # ONNX Runtime
//!
//! The shared library is loaded dynamically (`scripts/fetch-onnxruntime.sh` installs it
//! under `.runtime/onnxruntime/`); nothing is downloaded at build or run time. `ort` allows
//! one environment per process; see [`runtime`] for how to share it with other crates.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use image::{DynamicImage, RgbImage};
use ort::environment::Environment;
use ort::session::Session;

mod coords;
mod error;
mod info;
pub mod registry;
pub mod runtime;
pub mod speech;

use coords::Generator;
pub use coords::{pixel_coords, seed_to_latent};
pub use error::GeneratorError;
pub use info::{GeneratorInfo, ParameterInfo};
pub use registry::{GeneratorEntry, GeneratorSpec, Registry};
pub use runtime::init_runtime;
pub use speech::{Speech, SpeechRequest, TextError};

/// Smallest accepted width or height, in pixels.
pub const MIN_SIZE: u32 = 16;
/// Largest accepted width or height, in pixels.
pub const MAX_SIZE: u32 = 2048;
/// Most pixels evaluated in one ONNX Runtime call; larger images are rendered in bands of
/// whole rows. Bounds per-call activation memory to at most about
/// `MAX_CHUNK_PIXELS × 4 B × 300` ≈ 80 MB (every intermediate tensor of `cppn-abstract`
/// alive at once; ONNX Runtime reuses buffers, so the real peak is lower).
pub const MAX_CHUNK_PIXELS: usize = 65_536;

/// Where to find the registry and ONNX Runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// The generator registry (`registry.toml`); model files are resolved relative to it.
    pub registry_path: PathBuf,
    /// ONNX Runtime shared library (`libonnxruntime.so.1.31.1`), as installed by
    /// `scripts/fetch-onnxruntime.sh`. Loaded once per process: the first path wins (see
    /// [`init_runtime`]).
    pub onnxruntime_path: PathBuf,
}

impl Default for GeneratorConfig {
    /// `generators/models/registry.toml` and `.runtime/onnxruntime/libonnxruntime.so.1.31.1`,
    /// both relative to the working directory (i.e. the repository root).
    fn default() -> Self {
        Self {
            registry_path: PathBuf::from("generators/models/registry.toml"),
            onnxruntime_path: PathBuf::from(".runtime/onnxruntime/libonnxruntime.so.1.31.1"),
        }
    }
}

/// A request to generate an image (the body of `POST /v1/generate`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct GenerateRequest {
    /// Registry name of the generator, e.g. `"cppn-abstract"`.
    pub generator: String,
    /// Any 64-bit seed; mapped to the latent by [`seed_to_latent`]. Same seed (and size)
    /// ⇒ identical pixels.
    pub seed: u64,
    /// Width in pixels, `16..=2048`.
    pub width: u32,
    /// Height in pixels, `16..=2048`.
    pub height: u32,
}

/// A generated image and the generator that made it.
#[derive(Debug, Clone)]
pub struct GeneratedImage {
    /// The picture, always [`DynamicImage::ImageRgb8`] of the requested size.
    pub image: DynamicImage,
    /// Registry name of the generator.
    pub model: String,
    /// Registry version of the generator.
    pub version: String,
    /// Lower-case hex SHA-256 of the generator's model file.
    pub model_sha256: String,
}

/// One registry entry as loaded.
enum Slot {
    Image(Generator),
    Speech(speech::Voice),
    /// Registered but not runnable here (files or phonemizer absent).
    Unavailable {
        entry: GeneratorEntry,
        reason: String,
    },
}

impl Slot {
    fn entry(&self) -> &GeneratorEntry {
        match self {
            Self::Image(g) => &g.entry,
            Self::Speech(v) => &v.entry,
            Self::Unavailable { entry, .. } => entry,
        }
    }
}

/// The loaded generators. `Send + Sync`; cloning is an `Arc` bump.
#[derive(Clone)]
pub struct GeneratorRegistry {
    slots: Arc<Vec<Slot>>,
}

impl std::fmt::Debug for GeneratorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratorRegistry")
            .field("generators", &self.list())
            .finish()
    }
}

/// A registry entry between reading its files and building its session.
enum Pending {
    Image(GeneratorEntry, registry::ImageSpec, Vec<u8>),
    Speech(Box<speech::Prepared>),
    Unavailable(GeneratorEntry, String),
}

impl GeneratorRegistry {
    /// Loads every generator in the registry.
    ///
    /// Steps: parse the registry; read each model file and check its SHA-256 (speech voices
    /// also their config, and run their phonemizer once); load ONNX Runtime from
    /// `cfg.onnxruntime_path` via [`init_runtime`] (once per process) when some generator
    /// can run; build one CPU session per model and check it has the input/output names its
    /// kind needs. A voice whose files are not installed, or whose phonemizer (espeak-ng) is
    /// missing, is kept as *unavailable* with the reason ([`GeneratorInfo::unavailable`]);
    /// it never stops the others from loading. A registry without runnable generators
    /// does not load ONNX Runtime.
    ///
    /// # Errors
    /// [`GeneratorError::Registry`] (unreadable/invalid registry, an image model file that
    /// cannot be read, a voice config that does not parse),
    /// [`GeneratorError::ModelHash`] (digest mismatch of a file that is present, naming the
    /// model; checked before ONNX Runtime is touched), [`GeneratorError::RuntimeMissing`]
    /// (library absent: run `scripts/fetch-onnxruntime.sh`), [`GeneratorError::Runtime`]
    /// (library or model failed to load, names missing from the graph, or another crate
    /// already created the process's ONNX Runtime environment — then use
    /// [`Self::load_with_environment`]).
    pub fn load(cfg: &GeneratorConfig) -> Result<Self, GeneratorError> {
        Self::load_inner(cfg, None)
    }

    /// Like [`Self::load`], but builds the sessions in an existing ONNX Runtime
    /// environment (for a process where another component created it);
    /// `cfg.onnxruntime_path` is not used.
    ///
    /// # Errors
    /// As [`Self::load`], minus [`GeneratorError::RuntimeMissing`].
    pub fn load_with_environment(
        cfg: &GeneratorConfig,
        env: &Environment,
    ) -> Result<Self, GeneratorError> {
        Self::load_inner(cfg, Some(env))
    }

    fn load_inner(
        cfg: &GeneratorConfig,
        env: Option<&Environment>,
    ) -> Result<Self, GeneratorError> {
        let registry = Registry::load(&cfg.registry_path)?;
        let mut pending = Vec::with_capacity(registry.generators.len());
        for entry in &registry.generators {
            pending.push(match &entry.spec {
                GeneratorSpec::Image(spec) => Pending::Image(
                    entry.clone(),
                    spec.clone(),
                    entry.read_verified(&registry.path)?,
                ),
                GeneratorSpec::Speech(spec) => {
                    match speech::prepare(entry, spec, &registry.path)? {
                        speech::Preparation::Ready(p) => Pending::Speech(p),
                        speech::Preparation::Unavailable(reason) => {
                            tracing::warn!(generator = %entry.name, %reason, "generator unavailable");
                            Pending::Unavailable(entry.clone(), reason)
                        }
                    }
                }
            });
        }
        if registry.generators.is_empty() {
            tracing::warn!(registry = %registry.path.display(), "generator registry lists no generators");
        }
        let runnable = pending
            .iter()
            .any(|p| !matches!(p, Pending::Unavailable(..)));
        let env = match (env, runnable) {
            (_, false) => None,
            (Some(e), true) => Some(e.clone()),
            (None, true) => Some(init_runtime(&cfg.onnxruntime_path)?),
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let mut slots = Vec::with_capacity(pending.len());
        for p in pending {
            let slot = match (p, &env) {
                (Pending::Unavailable(entry, reason), _) => Slot::Unavailable { entry, reason },
                (Pending::Image(entry, spec, bytes), Some(env)) => {
                    Slot::Image(image_generator(env, entry, spec, &bytes, threads)?)
                }
                (Pending::Speech(p), Some(env)) => Slot::Speech(p.into_voice(env, threads)?),
                (_, None) => continue,
            };
            if !matches!(slot, Slot::Unavailable { .. }) {
                let e = slot.entry();
                tracing::info!(generator = %e.name, version = %e.version, kind = %e.kind, "generator loaded");
            }
            slots.push(slot);
        }
        Ok(Self {
            slots: Arc::new(slots),
        })
    }

    /// Every registered generator, in registry order, with its parameters and whether it is
    /// available here.
    pub fn list(&self) -> Vec<GeneratorInfo> {
        self.slots
            .iter()
            .map(|s| match s {
                Slot::Image(g) => GeneratorInfo::new(&g.entry, None),
                Slot::Speech(v) => GeneratorInfo::new(&v.entry, None),
                Slot::Unavailable { entry, reason } => {
                    GeneratorInfo::new(entry, Some(reason.clone()))
                }
            })
            .collect()
    }

    fn find(&self, name: &str) -> Result<&Slot, GeneratorError> {
        let slot = self
            .slots
            .iter()
            .find(|s| s.entry().name == name)
            .ok_or_else(|| GeneratorError::UnknownGenerator(name.to_owned()))?;
        match slot {
            Slot::Unavailable { entry, reason } => Err(GeneratorError::Unavailable {
                name: entry.name.clone(),
                reason: reason.clone(),
            }),
            s => Ok(s),
        }
    }

    fn find_image(&self, name: &str) -> Result<&Generator, GeneratorError> {
        match self.find(name)? {
            Slot::Image(g) => Ok(g),
            s => Err(GeneratorError::InvalidRequest(format!(
                "generator `{name}` is a {} generator, not an image generator",
                s.entry().kind
            ))),
        }
    }

    /// The registry kind (`"image"`, `"speech"`) of generator `name`, available or not.
    ///
    /// # Errors
    /// [`GeneratorError::UnknownGenerator`].
    pub fn kind_of(&self, name: &str) -> Result<&str, GeneratorError> {
        self.slots
            .iter()
            .map(Slot::entry)
            .find(|e| e.name == name)
            .map(|e| e.kind.as_str())
            .ok_or_else(|| GeneratorError::UnknownGenerator(name.to_owned()))
    }

    /// Speaks `req.text` with voice `req.generator` ([`speech`] describes the pipeline).
    /// **Blocking**; safe to call from several threads (sentences of concurrent requests
    /// interleave). Cost is linear in the text's length; memory is the output clip plus one
    /// sentence.
    ///
    /// # Errors
    /// [`GeneratorError::UnknownGenerator`]; [`GeneratorError::Unavailable`] for a voice
    /// whose files or phonemizer are missing; [`GeneratorError::InvalidRequest`] when
    /// `req.generator` is not a voice; [`GeneratorError::Text`] for refused text or speed;
    /// [`GeneratorError::Inference`] when espeak-ng or ONNX Runtime fails.
    pub fn synthesize(&self, req: &SpeechRequest) -> Result<Speech, GeneratorError> {
        match self.find(&req.generator)? {
            Slot::Speech(v) => v.synthesize(req),
            s => Err(GeneratorError::InvalidRequest(format!(
                "generator `{}` is a {} generator, not a voice",
                req.generator,
                s.entry().kind
            ))),
        }
    }

    /// Checks a speech request's text and speed against voice `generator` without
    /// synthesising (cheap; for refusing bad requests before queueing work).
    ///
    /// # Errors
    /// As [`Self::synthesize`], minus [`GeneratorError::Inference`].
    pub fn check_speech(&self, req: &SpeechRequest) -> Result<(), GeneratorError> {
        match self.find(&req.generator)? {
            Slot::Speech(v) => {
                speech::text::check_speed(req.speed)?;
                speech::text::normalize(&req.text, v.max_text_chars)?;
                Ok(())
            }
            s => Err(GeneratorError::InvalidRequest(format!(
                "generator `{}` is a {} generator, not a voice",
                req.generator,
                s.entry().kind
            ))),
        }
    }

    /// Generates an 8-bit RGB image. **Blocking** (CPU-bound; call it from
    /// `tokio::task::spawn_blocking` or a worker thread). Safe to call from several threads.
    ///
    /// The seed becomes the latent via [`seed_to_latent`]; the model's `(0, 1)` output is
    /// quantised as `round(v × 255)`. Same request ⇒ identical pixels (in one build, on one
    /// machine); different seeds ⇒ different pictures. Cost is linear in `width × height`
    /// (a 2048×2048 render is ≈ 16 G multiply-adds, ≈ 1.5 s on 2 cores); memory is bounded by
    /// rendering [`MAX_CHUNK_PIXELS`]-pixel row bands.
    ///
    /// # Errors
    /// [`GeneratorError::InvalidRequest`] if `width` or `height` is outside `16..=2048` or the
    /// generator is not an image generator; [`GeneratorError::UnknownGenerator`] if no
    /// generator has that name; [`GeneratorError::Unavailable`];
    /// [`GeneratorError::Inference`] if ONNX Runtime fails or returns malformed output.
    pub fn generate_image(&self, req: &GenerateRequest) -> Result<GeneratedImage, GeneratorError> {
        check_size(req.width, req.height)?;
        let g = self.find_image(&req.generator)?;
        let latent = seed_to_latent(req.seed, g.spec.latent_dim);
        let quantise = |v: &f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let bytes: Vec<u8> = if g.spec.native_size.is_some() {
            g.render(&latent, req.width, req.height, MAX_CHUNK_PIXELS)?
                .iter()
                .map(quantise)
                .collect()
        } else {
            // Quantise band by band: peak memory is the 8-bit image plus one band.
            let mut bytes = Vec::with_capacity(req.width as usize * req.height as usize * 3);
            g.render_bands(&latent, req.width, req.height, MAX_CHUNK_PIXELS, |band| {
                bytes.extend(band.iter().map(quantise))
            })?;
            bytes
        };
        let img = RgbImage::from_raw(req.width, req.height, bytes).ok_or_else(|| {
            GeneratorError::Inference {
                model: g.entry.name.clone(),
                message: "output buffer does not match the image size".into(),
            }
        })?;
        tracing::debug!(generator = %g.entry.name, seed = req.seed, width = req.width, height = req.height, "image generated");
        Ok(GeneratedImage {
            image: DynamicImage::ImageRgb8(img),
            model: g.entry.name.clone(),
            version: g.entry.version.clone(),
            model_sha256: g.entry.sha256.clone(),
        })
    }

    /// Runs a generator on an explicit latent and returns the raw model output: float32
    /// RGB in `[0, 1]`, row-major, `height × width × 3` values (pixel `(i, j)` — column
    /// `i`, row `j` — at index `3 (j·width + i)`). Blocking, like
    /// [`Self::generate_image`].
    ///
    /// # Errors
    /// [`GeneratorError::InvalidRequest`] for a size outside `16..=2048`, a latent whose
    /// length is not the model's latent dimension, or non-finite latent values;
    /// [`GeneratorError::UnknownGenerator`]; [`GeneratorError::Inference`].
    pub fn render_latent(
        &self,
        generator: &str,
        latent: &[f32],
        width: u32,
        height: u32,
    ) -> Result<Vec<f32>, GeneratorError> {
        check_size(width, height)?;
        let g = self.find_image(generator)?;
        if latent.len() != g.spec.latent_dim {
            return Err(GeneratorError::InvalidRequest(format!(
                "generator `{generator}` takes a latent of length {}, got {}",
                g.spec.latent_dim,
                latent.len()
            )));
        }
        if latent.iter().any(|v| !v.is_finite()) {
            return Err(GeneratorError::InvalidRequest(
                "latent contains non-finite values".into(),
            ));
        }
        g.render(latent, width, height, MAX_CHUNK_PIXELS)
    }
}

fn image_generator(
    env: &Environment,
    entry: GeneratorEntry,
    spec: registry::ImageSpec,
    bytes: &[u8],
    threads: usize,
) -> Result<Generator, GeneratorError> {
    let session = build_session(env, &entry.name, bytes, threads)?;
    let has_input = |n: &str| session.inputs().iter().any(|i| i.name() == n);
    if !spec.coords_input.as_deref().is_none_or(has_input)
        || !has_input(&spec.latent_input)
        || !session.outputs().iter().any(|o| o.name() == spec.output)
    {
        return Err(GeneratorError::Runtime(format!(
            "generator `{}` lacks input `{}`/`{}` or output `{}`",
            entry.name,
            spec.coords_input.as_deref().unwrap_or("-"),
            spec.latent_input,
            spec.output
        )));
    }
    Ok(Generator {
        entry,
        spec,
        session: Mutex::new(session),
    })
}

fn check_size(width: u32, height: u32) -> Result<(), GeneratorError> {
    let ok = |v: u32| (MIN_SIZE..=MAX_SIZE).contains(&v);
    if ok(width) && ok(height) {
        Ok(())
    } else {
        Err(GeneratorError::InvalidRequest(format!(
            "width and height must be in {MIN_SIZE}..={MAX_SIZE}, got {width}x{height}"
        )))
    }
}

/// Locks a session (`Session::run` takes `&mut self`); a poisoned lock is taken over (a
/// panic inside ONNX Runtime's bindings leaves no half-updated state of ours behind).
pub(crate) fn lock(session: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    session
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn build_session(
    env: &Environment,
    model: &str,
    bytes: &[u8],
    threads: usize,
) -> Result<Session, GeneratorError> {
    let fail = |e: &dyn std::fmt::Display| {
        GeneratorError::Runtime(format!("loading generator `{model}`: {e}"))
    };
    Session::builder(env)
        .map_err(|e| fail(&e))?
        .with_intra_threads(threads)
        .map_err(|e| fail(&e))?
        .with_inter_threads(1)
        .map_err(|e| fail(&e))?
        .with_intra_op_spinning(false)
        .map_err(|e| fail(&e))?
        .commit_from_memory(bytes)
        .map_err(|e| fail(&e))
}
