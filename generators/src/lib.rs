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
use ort::value::TensorRef;

mod error;
pub mod registry;
pub mod runtime;

pub use error::GeneratorError;
pub use registry::{GeneratorEntry, Registry};
pub use runtime::init_runtime;

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
}

/// Public description of a loaded generator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GeneratorInfo {
    /// Registry name (what [`GenerateRequest::generator`] names).
    pub name: String,
    /// Registry version.
    pub version: String,
    /// Content kind, currently always `"image"`.
    pub kind: String,
    /// Human-readable description.
    pub description: String,
}

struct Generator {
    entry: GeneratorEntry,
    /// `Session::run` takes `&mut self`; the lock is held per row band, so concurrent
    /// requests interleave band by band.
    session: Mutex<Session>,
}

/// The loaded generators. `Send + Sync`; cloning is an `Arc` bump.
#[derive(Clone)]
pub struct GeneratorRegistry {
    generators: Arc<Vec<Generator>>,
}

impl std::fmt::Debug for GeneratorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratorRegistry")
            .field("generators", &self.list())
            .finish()
    }
}

impl GeneratorRegistry {
    /// Loads every generator in the registry.
    ///
    /// Steps: parse the registry; read each model file and check its SHA-256; load ONNX
    /// Runtime from `cfg.onnxruntime_path` via [`init_runtime`] (once per process); build
    /// one CPU session per model and check it has the input/output names the registry
    /// declares. A registry without generators yields an empty registry and does not load
    /// ONNX Runtime.
    ///
    /// # Errors
    /// [`GeneratorError::Registry`] (unreadable/invalid registry or model file),
    /// [`GeneratorError::ModelHash`] (digest mismatch, naming the model; checked before
    /// ONNX Runtime is touched), [`GeneratorError::RuntimeMissing`] (library absent: run
    /// `scripts/fetch-onnxruntime.sh`), [`GeneratorError::Runtime`] (library or model failed
    /// to load, names missing from the graph, or another crate already created the
    /// process's ONNX Runtime environment — then use [`Self::load_with_environment`]).
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
        let blobs = registry
            .generators
            .iter()
            .map(|g| g.read_verified(&registry.path))
            .collect::<Result<Vec<_>, _>>()?;
        if registry.generators.is_empty() {
            tracing::warn!(registry = %registry.path.display(), "generator registry lists no generators");
            return Ok(Self {
                generators: Arc::new(Vec::new()),
            });
        }
        let env = match env {
            Some(e) => e.clone(),
            None => init_runtime(&cfg.onnxruntime_path)?,
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let mut generators = Vec::with_capacity(registry.generators.len());
        for (entry, bytes) in registry.generators.into_iter().zip(blobs) {
            let session = build_session(&env, &entry.name, &bytes, threads)?;
            let has_input = |n: &str| session.inputs().iter().any(|i| i.name() == n);
            if !has_input(&entry.coords_input)
                || !has_input(&entry.latent_input)
                || !session.outputs().iter().any(|o| o.name() == entry.output)
            {
                return Err(GeneratorError::Runtime(format!(
                    "generator `{}` lacks input `{}`/`{}` or output `{}`",
                    entry.name, entry.coords_input, entry.latent_input, entry.output
                )));
            }
            tracing::info!(generator = %entry.name, version = %entry.version, "generator loaded");
            generators.push(Generator {
                entry,
                session: Mutex::new(session),
            });
        }
        Ok(Self {
            generators: Arc::new(generators),
        })
    }

    /// The loaded generators, in registry order.
    pub fn list(&self) -> Vec<GeneratorInfo> {
        self.generators
            .iter()
            .map(|g| GeneratorInfo {
                name: g.entry.name.clone(),
                version: g.entry.version.clone(),
                kind: g.entry.kind.clone(),
                description: g.entry.description.clone(),
            })
            .collect()
    }

    fn find(&self, name: &str) -> Result<&Generator, GeneratorError> {
        self.generators
            .iter()
            .find(|g| g.entry.name == name)
            .ok_or_else(|| GeneratorError::UnknownGenerator(name.to_owned()))
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
    /// [`GeneratorError::InvalidRequest`] if `width` or `height` is outside `16..=2048`;
    /// [`GeneratorError::UnknownGenerator`] if no generator has that name;
    /// [`GeneratorError::Inference`] if ONNX Runtime fails or returns malformed output.
    pub fn generate_image(&self, req: &GenerateRequest) -> Result<GeneratedImage, GeneratorError> {
        check_size(req.width, req.height)?;
        let g = self.find(&req.generator)?;
        let latent = seed_to_latent(req.seed, g.entry.latent_dim);
        // Quantise band by band: peak memory is the 8-bit image plus one band.
        let mut bytes = Vec::with_capacity(req.width as usize * req.height as usize * 3);
        g.render_bands(&latent, req.width, req.height, MAX_CHUNK_PIXELS, |band| {
            bytes.extend(
                band.iter()
                    .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8),
            )
        })?;
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
        let g = self.find(generator)?;
        if latent.len() != g.entry.latent_dim {
            return Err(GeneratorError::InvalidRequest(format!(
                "generator `{generator}` takes a latent of length {}, got {}",
                g.entry.latent_dim,
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

fn build_session(
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

impl Generator {
    /// Renders `height × width` pixels as float32 RGB (see
    /// [`GeneratorRegistry::render_latent`]).
    fn render(
        &self,
        latent: &[f32],
        width: u32,
        height: u32,
        chunk_pixels: usize,
    ) -> Result<Vec<f32>, GeneratorError> {
        let mut out = Vec::with_capacity(width as usize * height as usize * 3);
        self.render_bands(latent, width, height, chunk_pixels, |v| {
            out.extend_from_slice(v)
        })?;
        Ok(out)
    }

    /// Renders `height × width` pixels in row bands of at most `chunk_pixels` pixels (at
    /// least one row), handing each band's finite `[n, 3]` output to `sink` in row order.
    /// Sizes and latent length are validated by the caller.
    fn render_bands(
        &self,
        latent: &[f32],
        width: u32,
        height: u32,
        chunk_pixels: usize,
        mut sink: impl FnMut(&[f32]),
    ) -> Result<(), GeneratorError> {
        let (w, h) = (width as usize, height as usize);
        let fail = |m: String| GeneratorError::Inference {
            model: self.entry.name.clone(),
            message: m,
        };
        let rows_per_chunk = (chunk_pixels / w).max(1);
        let mut row = 0;
        while row < h {
            let end = (row + rows_per_chunk).min(h);
            let coords = pixel_coords(width, height, row as u32..end as u32);
            let n = coords.len() / 3;
            let coords_t = TensorRef::from_array_view((vec![n, 3], coords.as_slice()))
                .map_err(|e| fail(e.to_string()))?;
            let latent_t = TensorRef::from_array_view((vec![1, latent.len()], latent))
                .map_err(|e| fail(e.to_string()))?;
            let mut session = self
                .session
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let outputs = session
                .run(ort::inputs![
                    self.entry.coords_input.as_str() => coords_t,
                    self.entry.latent_input.as_str() => latent_t,
                ])
                .map_err(|e| fail(e.to_string()))?;
            let value = outputs
                .get(&self.entry.output)
                .ok_or_else(|| fail(format!("no output `{}`", self.entry.output)))?;
            let (_, values) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| fail(e.to_string()))?;
            if values.len() != n * 3 {
                return Err(fail(format!(
                    "expected {} output values, got {}",
                    n * 3,
                    values.len()
                )));
            }
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(fail(format!("non-finite output {v}")));
            }
            sink(values);
            row = end;
        }
        Ok(())
    }
}

/// Pixel coordinates for rows `rows` of a `width × height` image: float32, row-major,
/// three values `(x, y, r)` per pixel.
///
/// Pixel centres map to `x = 2 (i + ½) / width − 1` and `y = 2 (j + ½) / height − 1`
/// (column `i`, row `j`, both computed in f64 then rounded to f32, so `x, y ∈ (−1, 1)`
/// with `y` increasing downwards), and `r = sqrt((x² + y²) / 2)` in f32, so `r ∈ [0, 1)`.
/// Identical to `pixel_coords` in `training/build_generators.py`. Rows past `height` are
/// not clipped; callers pass `rows ⊆ 0..height`.
pub fn pixel_coords(width: u32, height: u32, rows: std::ops::Range<u32>) -> Vec<f32> {
    let axis = |k: u32, n: u32| ((2.0 * (f64::from(k) + 0.5)) / f64::from(n) - 1.0) as f32;
    let xs: Vec<f32> = (0..width).map(|i| axis(i, width)).collect();
    let mut out = Vec::with_capacity(rows.len() * width as usize * 3);
    for j in rows {
        let y = axis(j, height);
        for &x in &xs {
            out.extend_from_slice(&[x, y, ((x * x + y * y) / 2.0).sqrt()]);
        }
    }
    out
}

/// One SplitMix64 step (Steele, Lea & Flood 2014): advances `state`, returns the output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Deterministic seed → latent mapping: `dim` independent standard-normal values.
///
/// A SplitMix64 stream is seeded with `seed`; each pair of outputs `(a, b)` gives
/// `u1 = ((a >> 11) + 1)·2⁻⁵³ ∈ (0, 1]`, `u2 = (b >> 11)·2⁻⁵³ ∈ [0, 1)` and the Box–Muller
/// pair `sqrt(−2 ln u1)·cos(2π u2)`, `sqrt(−2 ln u1)·sin(2π u2)`, computed in f64 and
/// rounded to f32 (an odd `dim` drops the last sine). Identical to `seed_to_latent` in
/// `training/build_generators.py`; stable across releases (changing it changes every
/// seed's picture).
pub fn seed_to_latent(seed: u64, dim: usize) -> Vec<f32> {
    let mut state = seed;
    let mut out = Vec::with_capacity(dim + 1);
    while out.len() < dim {
        let a = splitmix64(&mut state);
        let b = splitmix64(&mut state);
        let u1 = ((a >> 11) + 1) as f64 * f64::powi(2.0, -53);
        let u2 = (b >> 11) as f64 * f64::powi(2.0, -53);
        let rad = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push((rad * theta.cos()) as f32);
        out.push((rad * theta.sin()) as f32);
    }
    out.truncate(dim);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_coords_layout() {
        let c = pixel_coords(4, 2, 0..2);
        assert_eq!(c.len(), 4 * 2 * 3);
        // First pixel: column 0, row 0.
        assert_eq!(&c[..2], &[-0.75, -0.5]);
        // Last pixel: column 3, row 1.
        assert_eq!(&c[21..23], &[0.75, 0.5]);
        let r = c[23];
        assert!((r - ((0.75f32 * 0.75 + 0.25) / 2.0).sqrt()).abs() < 1e-7);
        assert_eq!(pixel_coords(4, 2, 1..2), c[12..].to_vec());
    }

    #[test]
    fn seed_to_latent_is_standard_normal_ish() {
        let v = seed_to_latent(0, 20_000);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
        assert!(v.iter().all(|x| x.is_finite()));
        assert_ne!(seed_to_latent(1, 16), seed_to_latent(2, 16));
    }

    #[test]
    fn banding_does_not_change_pixels() -> Result<(), Box<dyn std::error::Error>> {
        let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../.runtime/onnxruntime/libonnxruntime.so.1.31.1");
        if !lib.is_file() {
            return Err(format!(
                "ONNX Runtime not found at {}: run scripts/fetch-onnxruntime.sh first",
                lib.display()
            )
            .into());
        }
        let reg = GeneratorRegistry::load(&GeneratorConfig {
            registry_path: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/registry.toml"),
            onnxruntime_path: lib,
        })?;
        let g = reg.find("cppn-abstract")?;
        let latent = seed_to_latent(3, 16);
        let whole = g.render(&latent, 100, 37, usize::MAX)?;
        for chunk in [1, 100, 250, 1000] {
            let banded = g.render(&latent, 100, 37, chunk)?;
            assert_eq!(banded.len(), whole.len());
            let worst = whole
                .iter()
                .zip(&banded)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-6, "chunk {chunk}: max diff {worst}");
        }
        Ok(())
    }
}
