//! Image content fingerprint: a luma thumbnail compared by masked normalised
//! cross-correlation at the best alignment.
//!
//! **Fingerprint** ([`fingerprint`]): the Rec.601 luma of the image, box-averaged to a
//! thumbnail whose long side is [`THUMB_SIDE`] px (images with a shorter long side are kept
//! at their size), 8 bits per pixel, plus the image's size in pixels. At most 16 KiB
//! (≈ 22 KB as stored text).
//!
//! **Comparison** ([`compare`]): the candidate is a signed image after whatever happened to
//! it (re-encoding, resizing, cropping, a small rotation, tone changes). The watermark's
//! synchronisation already measured the scale `s` (the mark's tile period, over the signed
//! image's: the stored fingerprint's `scale` records that image's mark scale `k`) and rotation
//! `θ` of the candidate relative to the signed original ([`Detection::scale`](crate::Detection::scale),
//! [`Detection::rotation_deg`](crate::Detection::rotation_deg)); they are recorded with the
//! candidate's fingerprint ([`ImageFingerprint::with_geometry`]). The comparison then
//! 1. band-passes both thumbnails (difference of Gaussians, σ = 1 and 8 thumbnail pixels of
//!    the stored one: removes JPEG/resampling noise and the broad illumination that brightness,
//!    contrast and gamma changes alter, keeping the image's structure),
//! 2. maps the candidate into the stored thumbnail's frame (scale and rotation undone,
//!    bilinear), with a mask of where it has content,
//! 3. evaluates the normalised cross-correlation of the two over their overlap at *every*
//!    translation at once in the Fourier domain (masked NCC, Padfield 2012, *Masked object
//!    registration in the Fourier domain*, IEEE TIP 21(5)) — a crop matches the region of the
//!    original it came from —, counting only translations where one of the two lies (≥ 75 % of
//!    its area) inside the other and the overlap has ≥ [`MIN_OVERLAP_PX`] thumbnail pixels and
//!    ≥ [`MIN_OVERLAP_FRACTION`] of the stored thumbnail,
//! 4. reports `distance = 1 − max NCC`.
//!
//! A comparison that has too little overlap to decide is a non-match (distance 1): a binding
//! that can't be confirmed must not attribute. Thresholds: see [`MAX_DISTANCE`].

use image::DynamicImage;
use rustfft::num_complex::Complex;

use super::{Comparison, ParseError};
use crate::WatermarkError;

/// Long side of the thumbnail, pixels.
pub const THUMB_SIDE: usize = 128;

/// Fewest overlapping thumbnail pixels a comparison needs to decide, and
/// [`MIN_OVERLAP_FRACTION`] of the stored thumbnail: a small region holds too few independent
/// structures (one strong edge correlates with any edge; measured: with 1024 px, a 400×210
/// photo matched an unrelated 2560×1600 one at distance 0.11).
pub const MIN_OVERLAP_PX: usize = 2048;

/// Smallest part of the signed image (by area) a candidate must cover to be compared: crops
/// of less than a quarter of it can't confirm the binding and do not attribute.
pub const MIN_OVERLAP_FRACTION: f64 = 0.25;

/// Largest `1 − NCC` that counts as the same content. Chosen from the distributions measured by
/// `examples/copy_attack.rs` on the corpus photos (watermark/README.md, "Content binding"):
/// every genuine attacked copy of the image harness lies below it, every pair of different
/// photos above.
pub const MAX_DISTANCE: f64 = 0.5;

/// Fraction of the smaller of the two (in the stored frame) that must lie inside the other.
const CONTAINMENT: f64 = 0.75;
/// Band-pass: σ of the low-pass and of the subtracted background, stored thumbnail pixels.
const SIGMA_FINE: f64 = 1.0;
const SIGMA_COARSE: f64 = 8.0;
/// Noise floor of the band-passed thumbnails (8-bit code values): flat content correlates
/// as noise, not as structure.
const NOISE_FLOOR: f64 = 1.0;

/// A content fingerprint of an image (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFingerprint {
    /// Width of the fingerprinted image, pixels.
    pub width: u32,
    /// Height of the fingerprinted image, pixels.
    pub height: u32,
    /// Tile period of the mark in this image over 128 px, as the watermark's synchronisation
    /// measured it ([`Detection::scale`](crate::Detection::scale)); for a signed original,
    /// its mark's scale `m` ([`mark_scale`](crate::image::mark_scale): 1 below 1,440 px).
    /// A candidate's size relative to the signed original is its `scale` over the stored one.
    pub scale: f64,
    /// Rotation relative to the signed original, degrees (the convention of
    /// [`Detection::rotation_deg`](crate::Detection::rotation_deg)); 0 for a signed original.
    pub rotation_deg: f64,
    tw: usize,
    th: usize,
    luma: Vec<u8>,
}

/// Fingerprint of `img` (any colour type the watermark accepts).
///
/// # Errors
/// [`WatermarkError::UnsupportedColorType`] for colour types the watermark does not read;
/// [`WatermarkError::TooSmall`] for an empty image.
pub fn fingerprint(img: &DynamicImage) -> Result<ImageFingerprint, WatermarkError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(WatermarkError::TooSmall {
            what: "empty image".into(),
        });
    }
    let rows = crate::image::luma_rows(img)?;
    let long = w.max(h);
    let (tw, th) = if long <= THUMB_SIDE {
        (w, h)
    } else {
        let f = long as f64 / THUMB_SIDE as f64;
        (
            ((w as f64 / f).round() as usize).max(1),
            ((h as f64 / f).round() as usize).max(1),
        )
    };
    // Box average over integer cell boundaries: cell i covers [⌊i·w/tw⌋, ⌊(i+1)·w/tw⌋).
    let col_cell: Vec<usize> = (0..w).map(|x| (x * tw / w).min(tw - 1)).collect();
    let mut sums = vec![0f64; tw * th];
    let mut counts = vec![0u32; tw * th];
    let mut row = vec![0f32; w];
    for y in 0..h {
        rows(y, 0, &mut row);
        let cy = (y * th / h).min(th - 1);
        let (s, c) = (&mut sums[cy * tw..][..tw], &mut counts[cy * tw..][..tw]);
        for (&v, &cx) in row.iter().zip(&col_cell) {
            s[cx] += f64::from(v);
            c[cx] += 1;
        }
    }
    let luma = sums
        .iter()
        .zip(&counts)
        .map(|(&s, &c)| (s / f64::from(c.max(1))).round().clamp(0.0, 255.0) as u8)
        .collect();
    Ok(ImageFingerprint {
        width: img.width(),
        height: img.height(),
        scale: 1.0,
        rotation_deg: 0.0,
        tw,
        th,
        luma,
    })
}

impl ImageFingerprint {
    /// This fingerprint with the geometry the watermark's synchronisation measured
    /// (`scale`: attacked / original size; `rotation_deg` as in [`crate::Detection`]).
    /// Non-finite or non-positive scales are ignored (1 is kept).
    #[must_use]
    pub fn with_geometry(mut self, scale: Option<f64>, rotation_deg: Option<f64>) -> Self {
        if let Some(s) = scale.filter(|s| s.is_finite() && *s > 0.0) {
            self.scale = s;
        }
        if let Some(r) = rotation_deg.filter(|r| r.is_finite()) {
            self.rotation_deg = r;
        }
        self
    }

    /// Thumbnail size (width, height), pixels.
    pub fn thumb_size(&self) -> (usize, usize) {
        (self.tw, self.th)
    }

    /// Pixel size of one thumbnail pixel, in pixels of the fingerprinted image (geometric
    /// mean of the two axes).
    fn cell(&self) -> f64 {
        ((f64::from(self.width) / self.tw as f64) * (f64::from(self.height) / self.th as f64))
            .sqrt()
    }

    fn plane(&self) -> Vec<f32> {
        self.luma.iter().map(|&v| f32::from(v)).collect()
    }
}

impl std::fmt::Display for ImageFingerprint {
    /// `i1:{width}:{height}:{scale}:{rotation_deg}:{tw}:{th}:{base64url luma}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use base64::Engine;
        write!(
            f,
            "i1:{}:{}:{:.6}:{:.4}:{}:{}:{}",
            self.width,
            self.height,
            self.scale,
            self.rotation_deg,
            self.tw,
            self.th,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.luma)
        )
    }
}

impl std::str::FromStr for ImageFingerprint {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        use base64::Engine;
        let mut it = s.split(':');
        if it.next() != Some("i1") {
            return Err(ParseError("not an image fingerprint (i1)"));
        }
        let mut num = |what| it.next().ok_or(ParseError(what));
        let width: u32 = num("width")?.parse().map_err(|_| ParseError("width"))?;
        let height: u32 = num("height")?.parse().map_err(|_| ParseError("height"))?;
        let scale: f64 = num("scale")?.parse().map_err(|_| ParseError("scale"))?;
        let rotation_deg: f64 = num("rotation")?
            .parse()
            .map_err(|_| ParseError("rotation"))?;
        let tw: usize = num("tw")?.parse().map_err(|_| ParseError("tw"))?;
        let th: usize = num("th")?.parse().map_err(|_| ParseError("th"))?;
        let data = num("luma")?;
        if it.next().is_some() {
            return Err(ParseError("trailing fields"));
        }
        let luma = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| ParseError("luma is not base64url"))?;
        let ok = tw > 0
            && th > 0
            && tw.max(th) <= THUMB_SIDE
            && luma.len() == tw * th
            && width as usize >= tw
            && height as usize >= th
            && scale.is_finite()
            && scale > 0.0
            && rotation_deg.is_finite();
        if !ok {
            return Err(ParseError("inconsistent sizes or geometry"));
        }
        Ok(Self {
            width,
            height,
            scale,
            rotation_deg,
            tw,
            th,
            luma,
        })
    }
}

/// Compares a candidate (with the geometry of its watermark detection) with a signed
/// asset's stored fingerprint (see the module docs). Never panics.
pub fn compare(stored: &ImageFingerprint, candidate: &ImageFingerprint) -> Comparison {
    let distance = best_ncc(stored, candidate).map_or(1.0, |n| (1.0 - n).max(0.0));
    Comparison {
        distance,
        threshold: MAX_DISTANCE,
        matches: distance <= MAX_DISTANCE,
    }
}

/// The largest masked NCC over the admissible translations, `None` when none is admissible.
pub(crate) fn best_ncc(stored: &ImageFingerprint, cand: &ImageFingerprint) -> Option<f64> {
    // The candidate's tile ratio over the signed image's (its mark's scale `k`, recorded as the
    // stored fingerprint's `scale`): the candidate's size relative to the signed original.
    let rel = cand.scale / stored.scale;
    // Size of one candidate-thumbnail pixel in stored-thumbnail pixels.
    let r = cand.cell() / (rel * stored.cell());
    if !r.is_finite() || r <= 0.0 {
        return None;
    }
    let (ws, hs) = (stored.tw, stored.th);
    // Band-pass both at the same physical scale (stored-thumbnail units); when the candidate is
    // coarser than the stored thumbnail (r > 1), the stored one is low-passed to match.
    let fine = SIGMA_FINE * r.max(1.0);
    let f = band_pass(&stored.plane(), ws, hs, fine, SIGMA_COARSE);
    let g_own = band_pass(&cand.plane(), cand.tw, cand.th, fine / r, SIGMA_COARSE / r);
    let (g, mg, gw, gh) = warp(&g_own, cand.tw, cand.th, r, cand.rotation_deg);
    if gw == 0 || gh == 0 || gw > 4 * THUMB_SIDE || gh > 4 * THUMB_SIDE {
        return None;
    }
    masked_ncc_max(&f, ws, hs, &g, &mg, gw, gh)
}

/// Difference of Gaussians `G_fine * x − G_coarse * x` (edges reflected).
fn band_pass(x: &[f32], w: usize, h: usize, fine: f64, coarse: f64) -> Vec<f64> {
    let a = gaussian(x, w, h, fine);
    let b = gaussian(x, w, h, coarse);
    a.iter().zip(&b).map(|(a, b)| a - b).collect()
}

/// Separable Gaussian blur with reflected edges (radius 3σ, at most the plane's size).
fn gaussian(x: &[f32], w: usize, h: usize, sigma: f64) -> Vec<f64> {
    let sigma = sigma.max(0.3);
    let rad = (3.0 * sigma).ceil() as i64;
    let k: Vec<f64> = (-rad..=rad)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let ksum: f64 = k.iter().sum();
    let reflect = |i: i64, n: usize| -> usize {
        let n = n as i64;
        let mut i = i;
        for _ in 0..4 {
            if i < 0 {
                i = -i - 1;
            } else if i >= n {
                i = 2 * n - i - 1;
            } else {
                break;
            }
        }
        i.clamp(0, n - 1) as usize
    };
    let mut tmp = vec![0f64; w * h];
    for y in 0..h {
        for xx in 0..w {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                acc += kv * f64::from(x[y * w + reflect(xx as i64 + j as i64 - rad, w)]);
            }
            tmp[y * w + xx] = acc / ksum;
        }
    }
    let mut out = vec![0f64; w * h];
    for y in 0..h {
        for xx in 0..w {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                acc += kv * tmp[reflect(y as i64 + j as i64 - rad, h) * w + xx];
            }
            out[y * w + xx] = acc / ksum;
        }
    }
    out
}

/// Maps the candidate plane (`w`×`h`, its own thumbnail pixels) into the stored frame: one
/// candidate pixel = `r` stored pixels, rotated by `rot_deg` (the candidate is the original
/// rotated by it, so a stored-frame offset `p` from the centre reads the candidate at
/// `R(θ)·p / r`). Returns the plane, its mask (1 where the candidate has content) and size.
fn warp(g: &[f64], w: usize, h: usize, r: f64, rot_deg: f64) -> (Vec<f64>, Vec<f64>, usize, usize) {
    let (s, c) = rot_deg.to_radians().sin_cos();
    let (ew, eh) = (w as f64 * r, h as f64 * r);
    let gw = (ew * c.abs() + eh * s.abs()).round().max(1.0) as usize;
    let gh = (ew * s.abs() + eh * c.abs()).round().max(1.0) as usize;
    if gw > 4 * THUMB_SIDE || gh > 4 * THUMB_SIDE {
        return (Vec::new(), Vec::new(), gw, gh);
    }
    let (gcx, gcy) = ((gw as f64 - 1.0) / 2.0, (gh as f64 - 1.0) / 2.0);
    let (ccx, ccy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let mut out = vec![0f64; gw * gh];
    let mut mask = vec![0f64; gw * gh];
    for y in 0..gh {
        for x in 0..gw {
            let (px, py) = (x as f64 - gcx, y as f64 - gcy);
            let qx = (c * px - s * py) / r + ccx;
            let qy = (s * px + c * py) / r + ccy;
            if qx < -0.5 || qy < -0.5 || qx > w as f64 - 0.5 || qy > h as f64 - 0.5 {
                continue;
            }
            let (qx, qy) = (qx.clamp(0.0, (w - 1) as f64), qy.clamp(0.0, (h - 1) as f64));
            let (x0, y0) = (qx.floor() as usize, qy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (fx, fy) = (qx - x0 as f64, qy - y0 as f64);
            let top = g[y0 * w + x0] * (1.0 - fx) + g[y0 * w + x1] * fx;
            let bot = g[y1 * w + x0] * (1.0 - fx) + g[y1 * w + x1] * fx;
            out[y * gw + x] = top * (1.0 - fy) + bot * fy;
            mask[y * gw + x] = 1.0;
        }
    }
    (out, mask, gw, gh)
}

/// Largest masked NCC of `f` (`wf`×`hf`, fully valid) and `g` (`wg`×`hg`, mask `mg`) over all
/// translations whose overlap is admissible (Padfield 2012: six cross-correlations by FFT).
fn masked_ncc_max(
    f: &[f64],
    wf: usize,
    hf: usize,
    g: &[f64],
    mg: &[f64],
    wg: usize,
    hg: usize,
) -> Option<f64> {
    let n = (wf + wg).max(hf + hg).next_power_of_two();
    // Two real planes per complex FFT (`a + i·b`), separated by the conjugate symmetry of
    // real transforms: A[k] = (Z[k] + conj Z[−k]) / 2, B[k] = (Z[k] − conj Z[−k]) / 2i.
    let pair =
        |a: &dyn Fn(usize, usize) -> f64, b: &dyn Fn(usize, usize) -> f64, w: usize, h: usize| {
            let mut z = vec![Complex::new(0.0, 0.0); n * n];
            for y in 0..h {
                for x in 0..w {
                    z[y * n + x] = Complex::new(a(x, y), b(x, y));
                }
            }
            crate::dsp::fft2(&mut z, n, false);
            let mut za = vec![Complex::new(0.0, 0.0); n * n];
            let mut zb = vec![Complex::new(0.0, 0.0); n * n];
            for ky in 0..n {
                for kx in 0..n {
                    let k = ky * n + kx;
                    let m = z[((n - ky) % n) * n + (n - kx) % n].conj();
                    za[k] = (z[k] + m) * 0.5;
                    zb[k] = (z[k] - m) * Complex::new(0.0, -0.5);
                }
            }
            (za, zb)
        };
    let (ff, ff2) = pair(&|x, y| f[y * wf + x], &|x, y| f[y * wf + x].powi(2), wf, hf);
    let (gg, gg2) = pair(
        &|x, y| g[y * wg + x] * mg[y * wg + x],
        &|x, y| g[y * wg + x].powi(2) * mg[y * wg + x],
        wg,
        hg,
    );
    let (fm, gm) = pair(
        &|x, y| if x < wf && y < hf { 1.0 } else { 0.0 },
        &|x, y| {
            if x < wg && y < hg {
                mg[y * wg + x]
            } else {
                0.0
            }
        },
        wf.max(wg),
        hf.max(hg),
    );
    // corr(A, B)(d) = Σ_x A(x + d)·B(x) = IFFT(FFT(A)·conj(FFT(B)))(d); two real results per
    // inverse FFT (real and imaginary parts).
    let corr2 = |a: (&[Complex<f64>], &[Complex<f64>]), b: (&[Complex<f64>], &[Complex<f64>])| {
        let i = Complex::new(0.0, 1.0);
        let mut p: Vec<Complex<f64>> = (0..n * n)
            .map(|k| a.0[k] * a.1[k].conj() + i * (b.0[k] * b.1[k].conj()))
            .collect();
        crate::dsp::fft2(&mut p, n, true);
        let re: Vec<f64> = p.iter().map(|c| c.re).collect();
        let im: Vec<f64> = p.iter().map(|c| c.im).collect();
        (re, im)
    };
    let (count, sf) = corr2((&fm, &gm), (&ff, &gm));
    let (sff, sg) = corr2((&ff2, &gm), (&fm, &gg));
    let (sgg, sfg) = corr2((&fm, &gg2), (&ff, &gg));
    let area_g: f64 = mg.iter().sum();
    let area_f = (wf * hf) as f64;
    let need = (CONTAINMENT * area_f.min(area_g))
        .max(MIN_OVERLAP_PX as f64)
        .max(MIN_OVERLAP_FRACTION * area_f);
    let floor = NOISE_FLOOR * NOISE_FLOOR;
    let mut best: Option<f64> = None;
    for (i, &k) in count.iter().enumerate() {
        if k < need - 0.5 {
            continue;
        }
        let (a, b) = (sf[i], sg[i]);
        let cov = sfg[i] - a * b / k;
        let vf = (sff[i] - a * a / k).max(0.0) + k * floor;
        let vg = (sgg[i] - b * b / k).max(0.0) + k * floor;
        let ncc = cov / (vf * vg).sqrt();
        if ncc.is_finite() && best.is_none_or(|b| ncc > b) {
            best = Some(ncc);
        }
    }
    best
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
