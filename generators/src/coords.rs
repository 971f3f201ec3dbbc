//! Image generators over pixel coordinates (CPPN-style, `kind = "image"`): row-band rendering,
//! the coordinate grid and the seed → latent mapping.

use std::sync::Mutex;

use ort::session::Session;
use ort::value::TensorRef;

use crate::registry::{GeneratorEntry, ImageSpec};
use crate::GeneratorError;

pub(crate) struct Generator {
    pub(crate) entry: GeneratorEntry,
    pub(crate) spec: ImageSpec,
    /// `Session::run` takes `&mut self`; the lock is held per row band, so concurrent
    /// requests interleave band by band.
    pub(crate) session: Mutex<Session>,
}

impl Generator {
    /// Renders `height × width` pixels as float32 RGB (see
    /// [`GeneratorRegistry::render_latent`]).
    pub(crate) fn render(
        &self,
        latent: &[f32],
        width: u32,
        height: u32,
        chunk_pixels: usize,
    ) -> Result<Vec<f32>, GeneratorError> {
        if let Some(native) = self.spec.native_size {
            return self.render_resampled(latent, native, width, height);
        }
        let mut out = Vec::with_capacity(width as usize * height as usize * 3);
        self.render_bands(latent, width, height, chunk_pixels, |v| {
            out.extend_from_slice(v)
        })?;
        Ok(out)
    }

    /// A fixed-size generator: one run at its native `(w, h)` (`[1, 3, h, w]` planar output),
    /// clamped to `[0, 1]`, interleaved, and resampled to `width × height` with a Lanczos-3
    /// filter (`image::imageops::resize`, separable windowed sinc, a = 3).
    fn render_resampled(
        &self,
        latent: &[f32],
        native: (u32, u32),
        width: u32,
        height: u32,
    ) -> Result<Vec<f32>, GeneratorError> {
        let fail = |m: String| GeneratorError::Inference {
            model: self.entry.name.clone(),
            message: m,
        };
        let (nw, nh) = (native.0 as usize, native.1 as usize);
        let latent_t = TensorRef::from_array_view((vec![1, latent.len()], latent))
            .map_err(|e| fail(e.to_string()))?;
        let mut session = crate::lock(&self.session);
        let outputs = session
            .run(ort::inputs![self.spec.latent_input.as_str() => latent_t])
            .map_err(|e| fail(e.to_string()))?;
        let value = outputs
            .get(&self.spec.output)
            .ok_or_else(|| fail(format!("no output `{}`", self.spec.output)))?;
        let (_, planar) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(e.to_string()))?;
        if planar.len() != 3 * nw * nh {
            return Err(fail(format!(
                "expected {} output values, got {}",
                3 * nw * nh,
                planar.len()
            )));
        }
        if let Some(v) = planar.iter().find(|v| !v.is_finite()) {
            return Err(fail(format!("non-finite output {v}")));
        }
        let plane = nw * nh;
        let hwc: Vec<f32> = (0..plane)
            .flat_map(|i| (0..3).map(move |c| (c, i)))
            .map(|(c, i)| planar[c * plane + i].clamp(0.0, 1.0))
            .collect();
        drop(outputs);
        drop(session);
        if (width, height) == native {
            return Ok(hwc);
        }
        let img = image::Rgb32FImage::from_raw(native.0, native.1, hwc)
            .ok_or_else(|| fail("output buffer does not match the native size".into()))?;
        let big =
            image::imageops::resize(&img, width, height, image::imageops::FilterType::Lanczos3);
        Ok(big
            .into_raw()
            .into_iter()
            .map(|v| v.clamp(0.0, 1.0))
            .collect())
    }

    /// Renders `height × width` pixels in row bands of at most `chunk_pixels` pixels (at
    /// least one row), handing each band's finite `[n, 3]` output to `sink` in row order.
    /// Sizes and latent length are validated by the caller.
    pub(crate) fn render_bands(
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
        let coords_input = self
            .spec
            .coords_input
            .as_deref()
            .ok_or_else(|| fail("a fixed-size generator has no coordinate input".into()))?;
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
            let mut session = crate::lock(&self.session);
            let outputs = session
                .run(ort::inputs![
                    coords_input => coords_t,
                    self.spec.latent_input.as_str() => latent_t,
                ])
                .map_err(|e| fail(e.to_string()))?;
            let value = outputs
                .get(&self.spec.output)
                .ok_or_else(|| fail(format!("no output `{}`", self.spec.output)))?;
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
    use crate::{GeneratorConfig, GeneratorRegistry};
    use std::path::PathBuf;

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
        let g = reg.find_image("cppn-abstract")?;
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
