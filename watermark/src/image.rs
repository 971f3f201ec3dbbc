//! Keyed invisible image watermark (luma spread spectrum, tiled, perceptually masked).
//!
//! # Method
//! * **Pattern.** A 128×128 px tile of 64×64 chips (2×2 px each). Every chip has a
//!   keyed carrier sign `w ∈ {±1}`; a keyed permutation assigns 656 chips to a
//!   *pilot* (value `w`) and 20 chips to each of the 172 coded bits (value
//!   `w·(1−2b)`). The 172 coded bits are the 64-bit payload + CRC-16 under a
//!   rate-1/2, K=7 convolutional code (see the crate docs). This is direct-sequence
//!   spread spectrum (Cox, Kilian, Leighton & Shamoon 1997) repeated as tiles over
//!   the image (self-reference by tiling, Kutter 1998), so the tile is re-found
//!   after cropping, scaling and rotation from the autocorrelation.
//! * **Masking.** The pattern is scaled per pixel by an amplitude from the local
//!   activity `a = box7(|Y − box5(Y)|)` of the original luma (8-bit code values):
//!   `min(strength · min(1, a/activity_ref), grain_cap · a²)`, i.e. full strength
//!   in texture, proportional to the activity below `activity_ref`, and in
//!   low-activity areas never more than `grain_cap · a²`, so that exactly flat
//!   areas are not changed at all and near-flat ones get less than their own
//!   grain (an optional `flat_floor` raises every amplitude to a minimum; the
//!   sign path's last attempt uses it for images with no texture to mask the
//!   mark, such as generated smooth gradients). The luma delta is added identically to R, G and B (chroma untouched),
//!   alpha is never touched, and the result is quantised back to the input depth;
//!   8-bit output is quantised by Floyd–Steinberg error diffusion (see
//!   `Diffusion`), so a change of a fraction of a step is kept on average as
//!   sparse ±1 steps instead of being rounded to 0 or to a full step.
//! * **Detection.** High-pass `r = Y − box5(Y)`, normalised by the local activity
//!   (`r/(a+1)`, clipped) as a cheap locally-optimal weighting, over a centred
//!   analysis region of at most 2048×2048 px (bounded time and memory), is folded
//!   (summed) modulo the tile *in the tile's own frame* for each geometric
//!   hypothesis (the identity; the tile `128 · L'/720` px that an uncropped copy of
//!   long side `L'` of a mark-scaled original carries, see [`mark_scale`]; then, from
//!   `sync.rs`, up to 4 lattices — scale
//!   0.45–2.05, rotation ±3.5°, mild anisotropy — found in the autocorrelation of
//!   the residual, the self-reference of the periodic mark, Kutter 1998; a lattice
//!   is folded only if it stands out in the autocorrelation, z ≥ 8). The folded
//!   tile is whitened in the 2-D FFT domain (each frequency divided by the square
//!   root of the fold's power spectrum averaged over 5×5 bins, an estimate of the
//!   noise spectrum: the SCOT weighting of Knapp & Carter 1976) and circularly
//!   cross-correlated with the pilot for all 16384 tile offsets (this absorbs any
//!   translation / crop). The score is the z-score of the peak against the
//!   mean/std of the correlation at all offsets outside a 5×5 neighbourhood of the
//!   peak; the p-value is Šidák-corrected for the `n` hypotheses tested,
//!   `1 − (1 − Φc(z))^(n·16384)` (identity on a centred 1024² region when the region
//!   is larger, identity on the whole region, the predicted tile when it is within
//!   the synchronisation range and not the identity, the lattices with z ≥ 8 of at most 4;
//!   which are tested depends on the image only, never on the key). The coded bits
//!   are read at the peak offset (chip correlation, summed per bit) and
//!   Viterbi-decoded; hypotheses are tried in that order and the first that passes
//!   (p < 1e-6 and CRC) is returned, which is the same decision as testing all of
//!   them (the identity and predicted ones are first decided with the largest possible `n` = 7,
//!   which is conservative, so that a marked image returns before the sync search).
//!
//! Pixel values are processed on a 0–255 scale whatever the bit depth
//! (16-bit: value/257, float: value·255).

use ::image::{DynamicImage, ImageBuffer, Pixel};
use rustfft::num_complex::Complex;

use crate::code::{self, CODED_BITS};
use crate::dsp::{box_cols_map, box_rows, fft2};
use crate::stats::{max_of_n_sf, mean_std_excluding};
use crate::sync::{self, HalfPlane, IdentityFold, Lattice, SearchPlane};
use crate::{Detection, WatermarkError, WatermarkKey};

/// Tile side in pixels.
pub const TILE: usize = 128;
/// Chip side in pixels.
pub const CHIP: usize = 2;
const GRID: usize = TILE / CHIP;
const N_CHIPS: usize = GRID * GRID;
const CHIPS_PER_BIT: usize = 20;
const N_PILOT: usize = N_CHIPS - CHIPS_PER_BIT * CODED_BITS;
const PILOT: u16 = u16::MAX;
/// Minimum width and height (pixels) of an image that can carry the mark.
pub const MIN_SIDE: usize = TILE;
/// Long side (pixels) from which the mark is magnified with the image ([`mark_scale`]).
pub const MARK_SCALE_MIN_SIDE: usize = 1440;
/// Long side (pixels) at which a magnified mark has its native size: a large original fitted
/// within this many pixels carries 2-px chips on a 128-px tile again.
pub const MARK_REFERENCE_SIDE: f64 = 720.0;
/// Largest [`mark_scale`].
pub const MAX_MARK_SCALE: f64 = 32.0;

/// Magnification `m` of the mark embedded in a `width`×`height` image: chips of `2m` px and a
/// tile of `128m` px. Images under [`MARK_SCALE_MIN_SIDE`] (1,440 px, long side) keep `m = 1`;
/// larger ones get `m = long side / 720` ([`MARK_REFERENCE_SIDE`], at most 32, not rounded),
/// so that whatever the original's size, a copy whose long side is `L'` carries a tile of
/// `128 · L' / 720` px: exactly the native 128 px (2-px chips) once fitted within 720 px,
/// 192 px within 1080 px, and inside the synchronisation's 58–262 px range at one of the
/// detection pyramid's levels (see [`detect`]) for any copy of 0.1–2× the signed size.
/// Marks of earlier versions used `⌊long side / 1000⌋` (integer, 2–8 from 2,000 px); the
/// detector still finds them (same pyramid, a superset of the old levels).
pub fn mark_scale(width: usize, height: usize) -> f64 {
    let long = width.max(height);
    if long < MARK_SCALE_MIN_SIDE {
        1.0
    } else {
        (long as f64 / MARK_REFERENCE_SIDE).min(MAX_MARK_SCALE)
    }
}

/// Embedding parameters. Units are 8-bit code values (0–255 scale) for every
/// bit depth.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEmbedParams {
    /// Luma amplitude of the ±pattern in fully textured regions (mask = 1),
    /// in 8-bit code values.
    pub strength: f32,
    /// Cap of the change in low-activity areas: at local activity `a` (8-bit code
    /// values) the amplitude is at most `grain_cap · a²` code values. Under the
    /// error diffusion of 8-bit output a change `d < 1` becomes ±1 steps on a
    /// fraction `d` of the pixels (RMS ≈ √d), so the cap keeps the mark's RMS at
    /// ≈ `√grain_cap · a`, at or below the host's own fine grain there (≈ 1.1 `a`
    /// on the corpus photos) for `grain_cap ≤ 1`; exactly flat areas (`a` = 0)
    /// are never changed.
    pub grain_cap: f32,
    /// Least amplitude anywhere, also on exactly flat areas (8-bit code values).
    /// 0 by default: flat areas stay untouched and low-activity areas follow
    /// `grain_cap`. The sign path's last attempt sets it for images whose
    /// activity-masked mark cannot be read back (smooth generated art: gradients
    /// have no high-pass activity), trading a uniform ±1-step texture for a mark.
    pub flat_floor: f32,
    /// Local activity (mean |high-pass| over a 7×7 window, 8-bit code values) at
    /// which the mask reaches 1.
    pub activity_ref: f32,
    /// The pattern is scaled down if needed so that the PSNR of the (unquantised)
    /// change is at least this, in dB (RMS ≤ 255·10^(−min_psnr_db/20)).
    pub min_psnr_db: f32,
    /// Magnification of the mark (1–[`MAX_MARK_SCALE`]); `None` (the default, what the
    /// service uses) = [`mark_scale`] of the image. Set it to embed another geometry, e.g. the
    /// integer scale of an earlier version's mark.
    pub mark_scale: Option<f64>,
}

impl Default for ImageEmbedParams {
    fn default() -> Self {
        Self {
            strength: 3.8,
            grain_cap: 1.0,
            flat_floor: 0.0,
            activity_ref: 4.5,
            min_psnr_db: 43.0,
            mark_scale: None,
        }
    }
}

struct Layout {
    carrier: Vec<f32>,
    /// PILOT or coded-bit index per chip.
    role: Vec<u16>,
}

impl Layout {
    fn new(key: &WatermarkKey) -> Self {
        let carrier = key.stream("image/v1/carrier").signs(N_CHIPS);
        let perm = key.stream("image/v1/layout").permutation(N_CHIPS);
        let mut role = vec![PILOT; N_CHIPS];
        for (i, &c) in perm.iter().enumerate() {
            if i >= N_PILOT {
                role[c] = ((i - N_PILOT) / CHIPS_PER_BIT) as u16;
            }
        }
        Self { carrier, role }
    }

    /// Chip values (±1) for a payload.
    fn chips(&self, payload: u64) -> Vec<f32> {
        let coded = code::encode(payload);
        (0..N_CHIPS)
            .map(|c| match self.role[c] {
                PILOT => self.carrier[c],
                j => {
                    let s = if coded[j as usize] == 0 { 1.0 } else { -1.0 };
                    self.carrier[c] * s
                }
            })
            .collect()
    }
}

#[inline]
fn chip_index(x: usize, y: usize) -> usize {
    ((y % TILE) / CHIP) * GRID + (x % TILE) / CHIP
}

trait Sample: Copy {
    fn to255(self) -> f32;
    fn from255(v: f32) -> Self;
    /// Add the luma change `d` (0–255 scale, one per pixel) to the first `NCOL`
    /// of every `NCH` channels of `row`, quantising (`d` may be overwritten).
    /// `ed` carries the error-diffusion state between rows (8-bit samples only).
    fn add_row<const NCH: usize, const NCOL: usize>(
        row: &mut [Self],
        d: &mut [f32],
        _ed: &mut Diffusion,
    ) {
        for (p, &dv) in row.chunks_exact_mut(NCH).zip(d.iter()) {
            for v in p[..NCOL].iter_mut() {
                *v = Self::from255(v.to255() + dv);
            }
        }
    }
}

/// Floyd–Steinberg error diffusion (Floyd & Steinberg 1976) of the luma change
/// to whole 8-bit steps, serpentine scan (Ulichney 1987): each pixel gets the
/// integer nearest to its change plus the quantisation error diffused to it
/// (7/16 to the next pixel in scan order, 3/16, 5/16, 1/16 to the three below).
/// Every local mean of the change is kept, so a change of less than half a step
/// (the mark in low-activity areas) becomes sparse ±1 steps with density |d|
/// (RMS ≈ √|d| instead of 0 or 1 under plain rounding), the rounding error of
/// the whole mark is pushed to the highest spatial frequencies, and a gradual
/// change of the mask never makes a hard edge between marked and unmarked
/// areas. Pixels whose change is exactly 0 stay unchanged and absorb the error
/// that reaches them (nothing leaks into exactly flat areas). Deterministic (no
/// random dither). Lengths: `w + 2` (one guard each side).
struct Diffusion {
    /// Pending error of the current / next row, fixed point (1/256 step).
    cur: Vec<i32>,
    next: Vec<i32>,
    /// The row's change plus the error from the row above, fixed point.
    fixed: Vec<i32>,
    forward: bool,
}

impl Diffusion {
    /// Fixed-point scale: errors are carried in 1/256 of a step, in integer
    /// arithmetic (the error feedback is a serial dependency chain per row;
    /// integer adds and shifts keep it ≈ 3× shorter than float rounding).
    const ONE: i32 = 256;
    fn new(w: usize) -> Self {
        Self {
            cur: vec![0; w + 2],
            next: vec![0; w + 2],
            fixed: Vec::with_capacity(w),
            forward: true,
        }
    }

    /// Quantise the change `d` of one row (in place) to whole steps.
    fn quantise_row(&mut self, d: &mut [f32]) {
        let one = Self::ONE as f32;
        // Off the serial chain (vectorisable): each pixel's change plus the
        // error the previous row sent it, and a mask that is 0 where the
        // change is exactly 0 (no change wanted, e.g. exactly flat areas: the
        // pixel stays as it is and any error reaching it is dropped, so error
        // never leaks into unmarked areas).
        self.fixed.resize(d.len(), 0);
        for ((f, &v), &c) in self.fixed.iter_mut().zip(d.iter()).zip(&self.cur[1..]) {
            // NaN maps to 0 (`as` saturates); |v| ≤ 255 steps.
            let q = (v.clamp(-255.0, 255.0) * one + 0.5).floor() as i32 + c;
            *f = if v == 0.0 { 0 } else { q };
        }
        if self.forward {
            Self::run::<true>(&self.fixed, d, &mut self.next);
        } else {
            Self::run::<false>(&self.fixed, d, &mut self.next);
        }
        std::mem::swap(&mut self.cur, &mut self.next);
        // Errors pushed into the guards are dropped (at most 1/2 step at an edge).
        self.forward = !self.forward;
    }

    /// One row in scan direction `FWD`: `base` = change + error from the
    /// row above (fixed point), writes the whole steps into `d` and the
    /// error for the next row into `next` (guarded, pixel x at x + 1; every
    /// element of `next` is written).
    fn run<const FWD: bool>(base: &[i32], d: &mut [f32], next: &mut [i32]) {
        let w = base.len();
        // Error diffused to the next pixel in scan order (7/16), kept in a
        // register: the serial dependency is add, shift, mask, multiply. The
        // next row's sums are kept in registers too until complete (pixel x
        // adds 3/16 behind, 5/16 below and the remainder ahead, so the
        // position behind is final after x): one store per pixel, no
        // read-modify-write chain through memory.
        let mut carry = 0i32;
        // Pending sums of the next row at the positions behind and below the
        // current pixel (guarded indices g − 1 and g in scan order).
        let (mut behind_sum, mut below_sum) = (0i32, 0i32);
        for i in 0..w {
            let x = if FWD { i } else { w - 1 - i };
            let e = if d[x] == 0.0 {
                // No change wanted: the pixel stays, the error reaching it is dropped.
                0
            } else {
                let t = base[x] + carry + Self::ONE / 2;
                // Nearest step, half up (arithmetic shift = floor), and the error.
                d[x] = (t >> 8) as f32;
                (t & (Self::ONE - 1)) - Self::ONE / 2
            };
            carry = (e * 7) >> 4;
            let e3 = (e * 3) >> 4;
            let e5 = (e * 5) >> 4;
            let g = x + 1;
            next[if FWD { g - 1 } else { g + 1 }] = behind_sum + e3;
            behind_sum = below_sum + e5;
            // The remainder (≈ 1/16), so the error is conserved exactly.
            below_sum = e - carry - e3 - e5;
        }
        // The last two positions: below the last pixel, and the guard ahead of it.
        if FWD {
            next[w] = behind_sum;
            next[w + 1] = below_sum;
        } else {
            next[1] = behind_sum;
            next[0] = below_sum;
        }
    }
}

impl Sample for u8 {
    /// Error-diffused (see [`Diffusion`]): `v` is an integer, so the change is
    /// quantised once per pixel to a whole step and added to every colour
    /// channel (clamped to 0–255).
    fn add_row<const NCH: usize, const NCOL: usize>(
        row: &mut [Self],
        d: &mut [f32],
        ed: &mut Diffusion,
    ) {
        ed.quantise_row(d);
        for (p, &dv) in row.chunks_exact_mut(NCH).zip(d.iter()) {
            let di = dv as i32;
            for v in p[..NCOL].iter_mut() {
                *v = (i32::from(*v) + di).clamp(0, 255) as u8;
            }
        }
    }
    fn to255(self) -> f32 {
        f32::from(self)
    }
    fn from255(v: f32) -> Self {
        // Round half up after clamping (non-negative, so truncation = floor);
        // avoids a libm `roundf` call per sample. NaN maps to 0.
        (v.clamp(0.0, 255.0) + 0.5) as u8
    }
}
impl Sample for u16 {
    fn to255(self) -> f32 {
        f32::from(self) / 257.0
    }
    fn from255(v: f32) -> Self {
        ((v * 257.0).clamp(0.0, 65535.0) + 0.5) as u16
    }
}
impl Sample for f32 {
    fn to255(self) -> f32 {
        self * 255.0
    }
    fn from255(v: f32) -> Self {
        v / 255.0
    }
}

/// Luma (Rec.601 weights, 0–255 scale) of columns `x0..x0 + out.len()` of row `y`
/// of an interleaved `w`-pixel-wide buffer of `NCH` channels (colour when `COLOR`).
fn luma_row_of<T: Sample, const NCH: usize, const COLOR: bool>(
    raw: &[T],
    w: usize,
    y: usize,
    x0: usize,
    out: &mut [f32],
) {
    let src = &raw[(y * w + x0) * NCH..][..out.len() * NCH];
    for (o, p) in out.iter_mut().zip(src.chunks_exact(NCH)) {
        *o = if COLOR {
            0.299 * p[0].to255() + 0.587 * p[1].to255() + 0.114 * p[2].to255()
        } else {
            p[0].to255()
        };
    }
}

/// Reader of luma rows: `f(y, x0, out)` writes the luma (0–255 scale) of columns
/// `x0..x0 + out.len()` of row `y`.
pub(crate) type LumaRows<'a> = Box<dyn Fn(usize, usize, &mut [f32]) + 'a>;

/// Luma row reader of any supported image (no full-size plane is made).
///
/// # Errors
/// [`WatermarkError::UnsupportedColorType`] for color types not listed in [`embed`].
pub(crate) fn luma_rows(img: &DynamicImage) -> Result<LumaRows<'_>, WatermarkError> {
    let w = img.width() as usize;
    Ok(match img {
        DynamicImage::ImageLuma8(b) => {
            Box::new(move |y, x0, o| luma_row_of::<_, 1, false>(b.as_raw(), w, y, x0, o))
        }
        DynamicImage::ImageLumaA8(b) => {
            Box::new(move |y, x0, o| luma_row_of::<_, 2, false>(b.as_raw(), w, y, x0, o))
        }
        DynamicImage::ImageRgb8(b) => {
            Box::new(move |y, x0, o| luma_row_of::<_, 3, true>(b.as_raw(), w, y, x0, o))
        }
        DynamicImage::ImageRgba8(b) => {
            Box::new(move |y, x0, o| luma_row_of::<_, 4, true>(b.as_raw(), w, y, x0, o))
        }
        DynamicImage::ImageLuma16(b) => {
            Box::new(move |y, x0, o| luma_row_of::<_, 1, false>(b.as_raw(), w, y, x0, o))
        }
        DynamicImage::ImageLumaA16(b) => {
            Box::new(move |y, x0, o| luma_row_of::<_, 2, false>(b.as_raw(), w, y, x0, o))
        }
        DynamicImage::ImageRgb16(b) => {
            Box::new(move |y, x0, o| luma_row_of::<_, 3, true>(b.as_raw(), w, y, x0, o))
        }
        DynamicImage::ImageRgba16(b) => {
            Box::new(move |y, x0, o| luma_row_of::<_, 4, true>(b.as_raw(), w, y, x0, o))
        }
        DynamicImage::ImageRgb32F(b) => {
            Box::new(move |y, x0, o| luma_row_of::<_, 3, true>(b.as_raw(), w, y, x0, o))
        }
        DynamicImage::ImageRgba32F(b) => {
            Box::new(move |y, x0, o| luma_row_of::<_, 4, true>(b.as_raw(), w, y, x0, o))
        }
        other => {
            return Err(WatermarkError::UnsupportedColorType(format!(
                "{:?}",
                other.color()
            )))
        }
    })
}

/// Luma plane (0–255 scale, `w`×`h` row-major) of any supported image.
fn luma(img: &DynamicImage) -> Result<Vec<f32>, WatermarkError> {
    let rows = luma_rows(img)?;
    let w = img.width() as usize;
    let mut y = vec![0f32; w * img.height() as usize];
    for (r, row) in y.chunks_exact_mut(w.max(1)).enumerate() {
        rows(r, 0, row);
    }
    Ok(y)
}

/// The luma change of [`embed`], evaluated row by row: pixel `(x, y)` gets
/// `scale · amplitude(act) · chips[row(y)][col(x)]` (see [`amplitude`]), the chip under the
/// pixel's centre on the grid magnified `m` times ([`mark_scale`]).
struct Mark<'a> {
    act: &'a [f32],
    w: usize,
    /// The patterns summed (one for a fresh mark).
    layers: Vec<MarkLayer>,
    /// Global factor (≤ 1) that keeps the change's PSNR at `min_psnr_db`.
    scale: f32,
    strength: f32,
    inv_ref: f32,
    cap: f32,
    floor: f32,
}

/// One magnified chip pattern of a [`Mark`].
struct MarkLayer {
    /// Per-chip pattern values, [`GRID`]² (±1 for a fresh mark).
    chips: Vec<f32>,
    /// Chip column (0–63) under each pixel column's centre.
    col: Vec<u8>,
    /// Chip side in pixels, `CHIP · m` (not necessarily an integer).
    chip_px: f64,
}

impl MarkLayer {
    fn new(chips: Vec<f32>, m: f64, w: usize) -> Self {
        let chip_px = CHIP as f64 * m;
        let col = (0..w).map(|x| chip_coord(x, chip_px)).collect();
        Self {
            chips,
            col,
            chip_px,
        }
    }

    /// The pattern values of row `y`, per pixel column, added to `p`.
    fn add_row(&self, y: usize, p: &mut [f32]) {
        let prow = &self.chips[usize::from(chip_coord(y, self.chip_px)) * GRID..][..GRID];
        for (o, &c) in p.iter_mut().zip(&self.col) {
            *o += prow[usize::from(c)];
        }
    }
}

/// Chip coordinate (0–63) of pixel `i` (its centre) on a grid of `chip_px`-px chips.
/// For an integer magnification `k` this is `⌊i / 2k⌋ mod 64`, the pixel-aligned grid.
#[inline]
fn chip_coord(i: usize, chip_px: f64) -> u8 {
    // Truncation is the floor here (non-negative); the modulo keeps it < 64.
    (((i as f64 + 0.5) / chip_px) as usize % GRID) as u8
}

/// Mark amplitude (8-bit code values) at local activity `a`:
/// `min(strength · min(1, a/activity_ref), grain_cap · a²)` — full strength in
/// texture, proportional to the activity below `activity_ref` (the masking of
/// spread-spectrum marks by local contrast; Cox et al. 1997, Voloshynovskiy et
/// al. 1999 NVF), and at most `grain_cap · a²` in low-activity areas (see
/// [`ImageEmbedParams::grain_cap`]), never below `floor`
/// ([`ImageEmbedParams::flat_floor`]).
#[inline]
fn amplitude(a: f32, strength: f32, inv_ref: f32, cap: f32, floor: f32) -> f32 {
    (strength * (a * inv_ref).min(1.0))
        .min(cap * a * a)
        .max(floor)
}

impl Mark<'_> {
    /// Luma change of row `y` into `d` (`w` long).
    fn row(&self, y: usize, d: &mut [f32]) {
        d.fill(0.0);
        for l in &self.layers {
            l.add_row(y, d);
        }
        let arow = &self.act[y * self.w..][..self.w];
        let (s, k, inv_ref, cap, floor) = (
            self.scale,
            self.strength,
            self.inv_ref,
            self.cap,
            self.floor,
        );
        for (o, &a) in d.iter_mut().zip(arow) {
            *o *= s * amplitude(a, k, inv_ref, cap, floor);
        }
    }
}

/// Copy of `b` with the mark added to the first `NCOL` of every `NCH` channels,
/// quantised to `T`, one row at a time (no full-size intermediate plane).
fn with_mark<P, T, const NCH: usize, const NCOL: usize>(
    b: &ImageBuffer<P, Vec<T>>,
    mark: &Mark,
) -> ImageBuffer<P, Vec<T>>
where
    P: Pixel<Subpixel = T>,
    T: Sample + ::image::Primitive,
{
    let mut out = b.clone();
    let w = mark.w;
    let mut d = vec![0f32; w];
    let mut ed = Diffusion::new(w);
    for (y, row) in out.chunks_exact_mut(w * NCH).enumerate() {
        mark.row(y, &mut d);
        T::add_row::<NCH, NCOL>(row, &mut d, &mut ed);
    }
    out
}

/// Local activity `box7(|Y − box5(Y)|)` (the embedder's mask) of the `w`×`h`
/// plane `y`, which is consumed as scratch.
fn activity(mut y: Vec<f32>, w: usize, h: usize) -> Vec<f32> {
    let mut tmp = vec![0f32; w * h];
    box_rows(&y, w, 2, &mut tmp);
    box_cols_map(&tmp, w, h, 2, |r, mean| {
        for (v, &m) in y[r * w..][..w].iter_mut().zip(mean) {
            *v = (*v - m).abs();
        }
    });
    box_rows(&y, w, 3, &mut tmp);
    box_cols_map(&tmp, w, h, 3, |r, mean| {
        y[r * w..][..w].copy_from_slice(mean);
    });
    y
}

/// Embed `payload` into `img`.
///
/// Returns an image of the same dimensions and color type; alpha untouched.
/// Supported: Luma8, LumaA8, Rgb8, Rgba8, Luma16, LumaA16, Rgb16, Rgba16,
/// Rgb32F, Rgba32F.
///
/// # Errors
/// * [`WatermarkError::TooSmall`] if width or height < [`MIN_SIDE`] (128 px).
///   Images of at least 256×256 are recommended; robustness grows with area.
/// * [`WatermarkError::UnsupportedColorType`] for other color types.
pub fn embed(
    img: &DynamicImage,
    key: &WatermarkKey,
    payload: u64,
    params: &ImageEmbedParams,
) -> Result<DynamicImage, WatermarkError> {
    let chips = Layout::new(key).chips(payload);
    embed_layers(img, vec![(chips, scale_for(img, params))], params)
}

/// Re-mark an image that already carries this key's mark with payload
/// `previous`, so that it carries `payload` instead.
///
/// Marks under one key share their pilot chips and differ only in the data
/// chips of the bits where the two codewords differ. Embedding a second mark
/// on top of the first would leave both codewords at comparable strength
/// (the differing chips cancel) and decode neither; a third generation
/// (re-signing a re-signed file) would need a mark stronger than the two
/// before it together. Here the change is `amplitude · (chips(payload) −
/// chips(previous))`: zero on the pilot and on the data chips the codewords
/// share, twice the amplitude with the new sign on the chips they do not, so
/// a mark of the old payload at the same amplitude becomes exactly a mark of
/// the new one. The PSNR cap (`min_psnr_db`) accounts for the pattern's
/// energy (about 1.3× a fresh mark's RMS on half-differing codewords).
///
/// `previous_scale` is the old mark's magnification as its detection measured it
/// ([`Detection::scale`]); `None` means the new mark's. A file signed by an earlier
/// version carries an integer scale `⌊long side / 1000⌋` where the new mark gets
/// `long side / 720` ([`mark_scale`]): the measured scale is snapped to the new one or to
/// the nearest integer (within 2 %), and when they differ the change is the new mark minus
/// the old one at its own scale, `amplitude · (new(m) − old(k))`, so the old mark is removed
/// rather than left beside the new one. A scale that is neither (a resized copy, whose
/// offset is unknown too) is treated as the new mark's.
///
/// # Errors
/// As [`embed`].
pub fn embed_replacing(
    img: &DynamicImage,
    key: &WatermarkKey,
    payload: u64,
    previous: u64,
    previous_scale: Option<f64>,
    params: &ImageEmbedParams,
) -> Result<DynamicImage, WatermarkError> {
    let layout = Layout::new(key);
    let old = layout.chips(previous);
    let new = layout.chips(payload);
    let m = scale_for(img, params);
    let near = |a: f64, b: f64| (a - b).abs() <= 0.02 * b;
    let old_scale = previous_scale
        .filter(|s| s.is_finite() && *s >= 1.0 && !near(*s, m))
        .map(f64::round)
        .filter(|k| previous_scale.is_some_and(|s| near(s, *k)) && (*k - m).abs() > 1e-9);
    let layers = match old_scale {
        None => vec![(new.iter().zip(&old).map(|(n, o)| n - o).collect(), m)],
        Some(k) => vec![(new, m), (old.iter().map(|o| -o).collect(), k)],
    };
    embed_layers(img, layers, params)
}

/// The magnification of the mark embedded in `img`: `params.mark_scale` or [`mark_scale`].
fn scale_for(img: &DynamicImage, params: &ImageEmbedParams) -> f64 {
    params
        .mark_scale
        .unwrap_or_else(|| mark_scale(img.width() as usize, img.height() as usize))
}

/// [`embed`] with the change a sum of patterns: per-chip values ([`GRID`]²) on a grid of
/// the given magnification each.
fn embed_layers(
    img: &DynamicImage,
    layers: Vec<(Vec<f32>, f64)>,
    params: &ImageEmbedParams,
) -> Result<DynamicImage, WatermarkError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(WatermarkError::TooSmall {
            what: format!("image {w}x{h}, need at least {MIN_SIDE}x{MIN_SIDE}"),
        });
    }
    if !(params.strength.is_finite() && params.strength >= 0.0) {
        return Err(WatermarkError::InvalidInput("strength must be >= 0".into()));
    }
    if !(params.grain_cap.is_finite() && params.grain_cap >= 0.0) {
        return Err(WatermarkError::InvalidInput(
            "grain_cap must be >= 0".into(),
        ));
    }
    if !(params.flat_floor.is_finite() && params.flat_floor >= 0.0) {
        return Err(WatermarkError::InvalidInput(
            "flat_floor must be >= 0".into(),
        ));
    }
    if let Some((_, m)) = layers
        .iter()
        .find(|(_, m)| !(m.is_finite() && (1.0..=MAX_MARK_SCALE).contains(m)))
    {
        return Err(WatermarkError::InvalidInput(format!(
            "mark scale {m} is not within 1-{MAX_MARK_SCALE}"
        )));
    }
    let act = activity(luma(img)?, w, h);
    let inv_ref = 1.0 / params.activity_ref.max(1e-3);
    let (cap, floor) = (params.grain_cap.max(0.0), params.flat_floor);
    // RMS of the (unquantised) change: the chips are ±1, so it is
    // sqrt(mean amplitude²).
    let mut ss = 0f64;
    for row in act.chunks_exact(w) {
        let rs: f32 = row
            .iter()
            .map(|&a| {
                let m = amplitude(a, params.strength, inv_ref, cap, floor);
                m * m
            })
            .sum();
        ss += f64::from(rs);
    }
    // × the pattern's mean square (1 for ±1 chips; layers of different scales are taken as
    // uncorrelated, so their mean squares add).
    let chip_ms: f64 = layers
        .iter()
        .map(|(c, _)| c.iter().map(|&v| f64::from(v * v)).sum::<f64>() / c.len().max(1) as f64)
        .sum();
    let rms = (ss / (w * h) as f64 * chip_ms).sqrt();
    let max_rms = 255.0 * 10f64.powf(-f64::from(params.min_psnr_db) / 20.0);
    let scale = if rms > max_rms {
        (max_rms / rms) as f32
    } else {
        1.0
    };
    let mark = Mark {
        act: &act,
        w,
        layers: layers
            .into_iter()
            .map(|(c, m)| MarkLayer::new(c, m, w))
            .collect(),
        scale,
        strength: params.strength,
        inv_ref,
        cap,
        floor,
    };
    Ok(match img {
        DynamicImage::ImageLuma8(b) => DynamicImage::ImageLuma8(with_mark::<_, _, 1, 1>(b, &mark)),
        DynamicImage::ImageLumaA8(b) => {
            DynamicImage::ImageLumaA8(with_mark::<_, _, 2, 1>(b, &mark))
        }
        DynamicImage::ImageRgb8(b) => DynamicImage::ImageRgb8(with_mark::<_, _, 3, 3>(b, &mark)),
        DynamicImage::ImageRgba8(b) => DynamicImage::ImageRgba8(with_mark::<_, _, 4, 3>(b, &mark)),
        DynamicImage::ImageLuma16(b) => {
            DynamicImage::ImageLuma16(with_mark::<_, _, 1, 1>(b, &mark))
        }
        DynamicImage::ImageLumaA16(b) => {
            DynamicImage::ImageLumaA16(with_mark::<_, _, 2, 1>(b, &mark))
        }
        DynamicImage::ImageRgb16(b) => DynamicImage::ImageRgb16(with_mark::<_, _, 3, 3>(b, &mark)),
        DynamicImage::ImageRgba16(b) => {
            DynamicImage::ImageRgba16(with_mark::<_, _, 4, 3>(b, &mark))
        }
        DynamicImage::ImageRgb32F(b) => {
            DynamicImage::ImageRgb32F(with_mark::<_, _, 3, 3>(b, &mark))
        }
        DynamicImage::ImageRgba32F(b) => {
            DynamicImage::ImageRgba32F(with_mark::<_, _, 4, 3>(b, &mark))
        }
        other => {
            return Err(WatermarkError::UnsupportedColorType(format!(
                "{:?}",
                other.color()
            )))
        }
    })
}

/// Detect the mark. Never panics; images smaller than [`MIN_SIDE`] give
/// `too_small = true`, unsupported color types give `p_value = 1`, not detected.
///
/// The image is also searched at ½, ¼, ⅛ and 1/16 of its size (area averaging, each level
/// the 2×2 average of the one before) while the level's long side stays ≥ 500 px
/// ([`pyramid_levels`]): a copy of long side `L'` of a large original carries a tile of
/// `128 · L' / 720` px ([`mark_scale`]), which one of those levels brings into the
/// synchronisation's 58–262 px range. Images of at least 1,440 px try first the level that
/// brings an uncropped copy's tile closest to 128 px, then the others from full size down. The
/// levels depend on the image size only, and the p-value is corrected for the hypotheses of
/// every level (`levels × n × 16384`), so the false-positive rate stays at
/// [`crate::FALSE_POSITIVE_RATE`] whatever the order. `scale` is the tile period found, over
/// 128 px, in the pixels of `img` (for a `m = 1` mark: attacked / original size).
pub fn detect(img: &DynamicImage, key: &WatermarkKey) -> Detection {
    let long = img.width().max(img.height()) as usize;
    let levels = pyramid_levels(long);
    let n_levels = levels.len();
    // The pyramid below full size, built as far as needed: `pyramid[j]` is level j + 1, the
    // 2×2 area average of the level before it.
    let mut pyramid: Vec<DynamicImage> = Vec::new();
    let mut best: Option<Detection> = None;
    for i in level_order(long, n_levels) {
        while pyramid.len() < i {
            let prev = pyramid.last().unwrap_or(img);
            let next = prev.thumbnail_exact(prev.width() / 2, prev.height() / 2);
            pyramid.push(next);
        }
        let level = i.checked_sub(1).and_then(|j| pyramid.get(j)).unwrap_or(img);
        // The tile an uncropped, uniformly resized copy of a mark-scaled original carries at
        // this level ([`mark_scale`]: `128 · L' / 720` px at full size).
        let predicted = long as f64 / MARK_REFERENCE_SIDE / f64::from(levels[i]);
        let mut det = detect_level(level, key, n_levels, predicted);
        det.scale = det.scale.map(|s| s * f64::from(levels[i]));
        if det.detected {
            return det;
        }
        if best.as_ref().is_none_or(|b| det.p_value < b.p_value) {
            best = Some(det);
        }
    }
    best.unwrap_or_else(Detection::too_small)
}

/// Least long side (pixels) of a detection pyramid level below full size.
const MIN_LEVEL_SIDE: usize = 500;
/// Deepest pyramid level (1/16 of the size).
const MAX_LEVEL: u32 = 16;

/// Downscale factors (1, 2, 4, …, ≤ 16) of the detection pyramid of an image of long side
/// `long`: full size, and every halving whose long side stays ≥ [`MIN_LEVEL_SIDE`].
pub fn pyramid_levels(long: usize) -> Vec<u32> {
    let mut levels = vec![1u32];
    let mut d = 2u32;
    while d <= MAX_LEVEL && long / d as usize >= MIN_LEVEL_SIDE {
        levels.push(d);
        d *= 2;
    }
    levels
}

/// Order in which [`detect`] tries the `n` pyramid levels of an image of long side `long`:
/// from [`MARK_SCALE_MIN_SIDE`] up, first the level whose long side is nearest (in ratio) to
/// [`MARK_REFERENCE_SIDE`] — where an uncropped copy of a large original has its 128-px
/// tile — then the others from full size down; smaller images from full size down.
fn level_order(long: usize, n: usize) -> Vec<usize> {
    let first = if long >= MARK_SCALE_MIN_SIDE {
        let ideal = (long as f64 / MARK_REFERENCE_SIDE).log2().round().max(0.0);
        (ideal as usize).min(n.saturating_sub(1))
    } else {
        0
    };
    std::iter::once(first)
        .chain((0..n).filter(|&i| i != first))
        .collect()
}

/// [`detect`] at one level of the resolution pyramid; `levels` tested in all; `predicted` is
/// the tile magnification an uncropped copy of a mark-scaled original has at this level.
fn detect_level(
    img: &DynamicImage,
    key: &WatermarkKey,
    levels: usize,
    predicted: f64,
) -> Detection {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < MIN_SIDE || h < MIN_SIDE {
        return Detection::too_small();
    }
    let Ok(rows) = luma_rows(img) else {
        return Detection {
            too_small: false,
            ..Detection::too_small()
        };
    };
    // The analysis region: a centred crop of at most ANALYSIS_MAX per side.
    let (cw, ch) = (w.min(ANALYSIS_MAX), h.min(ANALYSIS_MAX));
    let (x0, y0) = ((w - cw) / 2, (h - ch) / 2);
    // Everything the identity hypotheses and the sync search read is accumulated
    // while each residual row is in cache. The full-resolution plane is kept only
    // where the sync search reads it (regions not searched at half resolution);
    // otherwise it is recomputed if a lattice candidate has to be folded (rare on
    // unmarked images), which saves writing 4 bytes per pixel on every detection.
    let decimated = sync::decimated(cw, ch);
    let mut plane = (!decimated).then(|| Vec::with_capacity(cw * ch));
    let mut quick = (cw > QUICK_SIDE || ch > QUICK_SIDE)
        .then(|| IdentityFold::new(cw, ch, TILE, QUICK_SIDE * QUICK_SIDE));
    let mut whole = IdentityFold::new(cw, ch, TILE, MAX_FOLD_SAMPLES);
    let mut half = decimated.then(|| HalfPlane::new(cw, ch));
    let region_rows = |y: usize, out: &mut [f32]| rows(y0 + y, x0, out);
    residual(region_rows, cw, ch, |y, row| {
        if let Some(p) = plane.as_mut() {
            p.extend_from_slice(row);
        }
        if let Some(q) = quick.as_mut() {
            q.add_row(y, row);
        }
        whole.add_row(y, row);
        if let Some(hp) = half.as_mut() {
            hp.add_row(y, row);
        }
    });
    let identity_folds: Vec<Vec<f64>> = quick
        .into_iter()
        .chain([whole])
        .map(IdentityFold::finish)
        .collect();
    // (`plane` is kept exactly when `half` is not made.)
    let search = match half {
        Some(hp) => SearchPlane::Half(hp),
        None => SearchPlane::Full(plane.as_deref().unwrap_or_default()),
    };
    let full_plane = || {
        let mut p = Vec::with_capacity(cw * ch);
        residual(region_rows, cw, ch, |_, row| p.extend_from_slice(row));
        p
    };
    let geometry = Hypotheses { levels, predicted };
    detect_residual(cw, ch, identity_folds, search, full_plane, key, &geometry)
}

/// What [`detect_residual`] needs to know about the hypotheses besides the residual.
struct Hypotheses {
    /// Pyramid levels tested in all (the p-value counts every level's hypotheses).
    levels: usize,
    /// Tile magnification predicted from the input's size ([`detect`]); tested as a
    /// hypothesis of its own when inside the synchronisation range and not the identity.
    predicted: f64,
}

/// The predicted magnification is tested only if it differs from the identity by more than
/// this (relative): within it the identity fold reads the same chips.
const PREDICTED_MIN_OFFSET: f64 = 0.02;

/// The analysis region: a centred crop of at most this many pixels per side
/// (bounds detection time and memory for very large images).
const ANALYSIS_MAX: usize = 2048;
/// Side of the centred region tried first (identity only).
const QUICK_SIDE: usize = 1024;
/// Candidate lattices from the autocorrelation, tested besides the identity.
const SYNC_CANDIDATES: usize = 4;
/// At most this many tile-frame pixels are folded per candidate.
const MAX_FOLD_SAMPLES: usize = ANALYSIS_MAX * ANALYSIS_MAX;
/// A candidate lattice is folded and tested only if its autocorrelation score
/// (sum over its points, in units of the autocorrelation's noise level, see
/// `sync::candidates`) is at least this. Measured with the harness attacks on 28
/// corpus photos (≤ 1280 px): every lattice that led to a detection had z ≥ 16.7;
/// on 58 clean images the candidates had median z 5.3, 90th percentile 9.5 (host
/// periodicities reach > 100), so most folds are skipped on unmarked images.
const SYNC_MIN_Z: f64 = 8.0;
/// At most this many tile-frame pixels (64 tiles) are folded per lattice
/// candidate (a centred part of the region): bounds the cost of the search on
/// unmarked images, where candidates of small scale would otherwise fold up to
/// [`MAX_FOLD_SAMPLES`] each.
const LATTICE_FOLD_SAMPLES: usize = QUICK_SIDE * QUICK_SIDE;

/// Rows per strip of [`residual`]. Each strip recomputes its [`HALO`] rows of
/// context on both sides (16 % extra work at 64 rows, 31 % at 32); 64 measured
/// 3–5 % faster than 32 for 1080p detection (AMD EPYC, one thread), the scratch
/// planes (3 × 74 rows × width × 4 bytes) staying within a 1–2 MiB L2.
const STRIP: usize = 64;
/// Rows of context a residual row depends on: box5 (±2) of the luma, then box7
/// (±3) of the high-pass.
const HALO: usize = 5;

/// Locally normalised residual `(Y − box5 Y)/(a + 1)` clipped to ±4, where
/// `a = box7(|Y − box5 Y|)`, of the `w`×`h` region whose luma rows `rows(y, out)`
/// writes: `sink(y, row)` receives the rows of the result in order, `y = 0..h`.
///
/// Computed in strips of [`STRIP`] rows with [`HALO`] rows of context on each side
/// (the box filters' border rule applies at the region's edges only, so the
/// result is the same as on the whole plane): memory is `O(w)` and stays in
/// cache, no full-size luma plane is made, and the sink sees each row while it is
/// still in cache.
fn residual(
    rows: impl Fn(usize, &mut [f32]),
    w: usize,
    h: usize,
    mut sink: impl FnMut(usize, &[f32]),
) {
    let mut res = vec![0f32; w];
    let cap = (STRIP + 2 * HALO).min(h) * w;
    let (mut y, mut tmp, mut mag) = (vec![0f32; cap], vec![0f32; cap], vec![0f32; cap]);
    for s0 in (0..h).step_by(STRIP) {
        let s1 = (s0 + STRIP).min(h);
        let (a0, b0) = (s0.saturating_sub(HALO), (s1 + HALO).min(h));
        let n = b0 - a0;
        let (y, tmp, mag) = (&mut y[..n * w], &mut tmp[..n * w], &mut mag[..n * w]);
        for (i, row) in y.chunks_exact_mut(w).enumerate() {
            rows(a0 + i, row);
        }
        box_rows(y, w, 2, tmp);
        // y ← Y − box5(Y) (the high-pass), mag ← |high-pass|, in the column pass.
        box_cols_map(tmp, w, n, 2, |r, mean| {
            let (yr, mr) = (&mut y[r * w..][..w], &mut mag[r * w..][..w]);
            for ((v, m), &mu) in yr.iter_mut().zip(mr.iter_mut()).zip(mean) {
                *v -= mu;
                *m = v.abs();
            }
        });
        box_rows(mag, w, 3, tmp);
        box_cols_map(tmp, w, n, 3, |r, act| {
            let g = a0 + r;
            if g < s0 || g >= s1 {
                return;
            }
            let yr = &y[r * w..][..w];
            for ((o, &v), &a) in res.iter_mut().zip(yr).zip(act) {
                *o = (v / (a + 1.0)).clamp(-4.0, 4.0);
            }
            sink(g, &res);
        });
    }
}

/// Pilot correlation over a folded tile: the z-score of the best of the 16384
/// offsets against the empirical null of the others, and the soft coded bits read at
/// that offset from the fold whitened two ways.
struct FoldScore {
    score: f64,
    /// From the fold whitened by its smoothed power spectrum (as the pilot).
    soft: Vec<f64>,
    /// From the phase-only whitened fold (each bin divided by its own magnitude).
    soft_phase_only: Vec<f64>,
}

/// The soft coded bits (chip correlations summed per bit) of the whitened fold `fw`
/// (spatial domain) with the tile origin at offset (`px`, `py`).
fn read_soft(fw: &[Complex<f64>], layout: &Layout, px: usize, py: usize) -> Vec<f64> {
    let mut soft = vec![0f64; CODED_BITS];
    for ty in 0..TILE {
        for tx in 0..TILE {
            let ch = chip_index(tx, ty);
            let role = layout.role[ch];
            if role == PILOT {
                continue;
            }
            let v = fw[((ty + py) % TILE) * TILE + (tx + px) % TILE].re;
            soft[role as usize] += v * f64::from(layout.carrier[ch]);
        }
    }
    soft
}

fn pilot_spectrum(layout: &Layout) -> Vec<Complex<f64>> {
    let mut p: Vec<Complex<f64>> = (0..TILE * TILE)
        .map(|i| {
            let c = chip_index(i % TILE, i / TILE);
            let v = if layout.role[c] == PILOT {
                f64::from(layout.carrier[c])
            } else {
                0.0
            };
            Complex::new(v, 0.0)
        })
        .collect();
    fft2(&mut p, TILE, false);
    p
}

/// Half-width (bins) of the local mean of the folded tile's power spectrum that whitens it
/// in [`score_fold`] (5×5 bins).
const WHITEN_BINS: usize = 2;

fn score_fold(fold: &[f64], layout: &Layout, pilot: &[Complex<f64>]) -> FoldScore {
    // Whitened folded residual: every frequency divided by the square root of the
    // fold's power spectrum averaged over 5×5 neighbouring bins, an estimate of the
    // noise (host + attack) PSD, so the correlation with the pilot weights each
    // frequency by the inverse noise amplitude (the SCOT weighting of Knapp & Carter
    // 1976, with a smoothed spectrum). Dividing each bin by its own magnitude instead
    // (phase-only correlation, the previous version) also divides the mark's share of
    // that bin by itself; the inverse PSD (the matched filter for an unattacked mark)
    // over-weights the high frequencies that JPEG and resampling take from the mark
    // too. Measured on the platform harness (watermark/README.md): the weakest copies'
    // pilot z rose 10–20 % over phase-only; the inverse PSD lowered it.
    let mut f: Vec<Complex<f64>> = fold.iter().map(|&v| Complex::new(v, 0.0)).collect();
    fft2(&mut f, TILE, false);
    f[0] = Complex::new(0.0, 0.0);
    let mean_mag = f.iter().map(|c| c.norm_sqr().sqrt()).sum::<f64>() / f.len() as f64;
    let eps = 1e-3 * mean_mag + 1e-12;
    let mut phase_only: Vec<Complex<f64>> =
        f.iter().map(|c| c / (c.norm_sqr().sqrt() + eps)).collect();
    let power: Vec<f32> = f.iter().map(|c| c.norm_sqr() as f32).collect();
    let mut psd = vec![0f32; TILE * TILE];
    {
        let mut tmp = vec![0f32; TILE * TILE];
        sync::circular_box(&power, &mut tmp, &mut psd, TILE, WHITEN_BINS);
    }
    let mean_psd = psd.iter().map(|&v| f64::from(v)).sum::<f64>() / psd.len() as f64;
    // Floor: the running sums can leave tiny negative residues; an all-zero fold stays zero.
    let floor = 1e-6 * mean_psd + 1e-24;
    for (c, &p) in f.iter_mut().zip(&psd) {
        *c /= (f64::from(p).max(0.0) + floor).sqrt();
    }
    let mut corr: Vec<Complex<f64>> = f.iter().zip(pilot).map(|(a, b)| a * b.conj()).collect();
    fft2(&mut corr, TILE, true);
    let raw: Vec<f64> = corr.iter().map(|v| v.re).collect();
    // Standardise per chip-parity class: shifts that are chip-aligned in x and/or y
    // have a different null variance when the input carries a 2×2-chip pattern
    // (e.g. a mark under another key), so each class gets its own empirical null.
    let class = |i: usize| ((i / TILE) % CHIP) * CHIP + (i % TILE) % CHIP;
    // One pass for the four classes' sums (n, Σv, Σv²), then the peak of the
    // standardised values.
    let mut sums = [[0f64; 3]; CHIP * CHIP];
    for (i, &v) in raw.iter().enumerate() {
        if v.is_finite() {
            let a = &mut sums[class(i)];
            a[0] += 1.0;
            a[1] += v;
            a[2] += v * v;
        }
    }
    let norm = sums.map(|[n, s, s2]| {
        if n < 2.0 {
            return (0.0, 0.0);
        }
        let m = s / n;
        let sd = ((s2 - n * m * m) / (n - 1.0)).max(0.0).sqrt();
        (m, if sd > 0.0 { 1.0 / sd } else { 0.0 })
    });
    let (peak, _) = raw
        .iter()
        .enumerate()
        .fold((0usize, f64::NEG_INFINITY), |acc, (i, &v)| {
            let (mu, inv_sd) = norm[class(i)];
            let z = (v - mu) * inv_sd;
            if z > acc.1 {
                (i, z)
            } else {
                acc
            }
        });
    let (py, px) = (peak / TILE, peak % TILE);
    let near = |i: usize| {
        let dy = (i / TILE + TILE - py) % TILE;
        let dx = (i % TILE + TILE - px) % TILE;
        (dy <= 2 || dy >= TILE - 2) && (dx <= 2 || dx >= TILE - 2)
    };
    // Re-estimate the null of the peak's class without the peak neighbourhood.
    let pk = class(peak);
    let (mu, sd) = mean_std_excluding(&raw, |i| class(i) != pk || near(i));
    let score = if sd > 0.0 { (raw[peak] - mu) / sd } else { 0.0 };

    // Read coded bits at the peak offset from the whitened residual, both ways (see
    // `detect_residual`: the CRC picks).
    let mut fw = f;
    fft2(&mut fw, TILE, true);
    fft2(&mut phase_only, TILE, true);
    FoldScore {
        score,
        soft: read_soft(&fw, layout, px, py),
        soft_phase_only: read_soft(&phase_only, layout, px, py),
    }
}

/// Detection on the residual of the `cw`×`ch` analysis region, given its identity
/// folds (the centred [`QUICK_SIDE`]² part when the region is larger, then the whole
/// region), the plane the sync search reads, and how to get the full-resolution
/// residual (called at most once, only if a lattice is folded).
fn detect_residual(
    cw: usize,
    ch: usize,
    identity_folds: Vec<Vec<f64>>,
    search: SearchPlane<'_>,
    full_plane: impl Fn() -> Vec<f32>,
    key: &WatermarkKey,
    geometry: &Hypotheses,
) -> Detection {
    let levels = geometry.levels;
    let layout = Layout::new(key);
    let pilot = pilot_spectrum(&layout);
    // Hypotheses, in order: the identity (no geometric change) on a centred
    // QUICK_SIDE² region (fast path for the common case, only when the region is
    // larger), the identity on the whole analysis region, the predicted lattice (the
    // tile an uncropped copy of a mark-scaled original carries at this size, when it
    // is in the synchronisation range and not the identity: the platform case, found
    // without the search even where the mark is too weak to stand out in the
    // autocorrelation), then up to SYNC_CANDIDATES lattices found in the residual's
    // autocorrelation, of which only those with z ≥ SYNC_MIN_Z are tested. Which
    // hypotheses are tested depends on the image only, never on the key, so the
    // p-value is Šidák-corrected for the number tested (× 16384 offsets each). The
    // identity and predicted hypotheses are first decided against the largest
    // possible number (3 + SYNC_CANDIDATES), which is conservative, so that a marked
    // image returns before the sync search; if none passes, all tested hypotheses are
    // decided against the actual number, in the same order. "Some tested hypothesis
    // passes" is then the same event as "the best of them passes", whatever the order.
    struct Tested {
        score: f64,
        dec: code::Decoded,
        lattice: Lattice,
    }
    let score = |fold: &[f64], l: &Lattice| {
        let s = score_fold(fold, &layout, &pilot);
        // The coded bits as read from the fold whitened like the pilot, else (CRC failed)
        // from the phase-only whitened fold, which the previous version read: a two-path
        // list decoding, the CRC selecting. Detection still needs the pilot's p-value, so
        // the second path cannot raise the false-positive rate; it adds one more chance
        // (2^-16) that a wrong codeword passes the CRC on a hypothesis whose pilot passed.
        // Measured: the bench's `real_photo_047` combined chain (pilot z 7.9) read 5 payload
        // bits wrong from the smoothed whitening and none from the phase-only one.
        let first = code::decode(&s.soft);
        let dec = if first.payload.is_some() {
            first
        } else {
            let second = code::decode(&s.soft_phase_only);
            if second.payload.is_some() {
                second
            } else {
                first
            }
        };
        Tested {
            score: s.score,
            dec,
            lattice: *l,
        }
    };
    let decide = |t: &Tested, n_tested: usize| {
        let p = max_of_n_sf(t.score, levels.max(1) * n_tested * TILE * TILE);
        let mut d = Detection::decide(&t.dec, p, t.score, |_| Vec::new());
        d.scale = Some(t.lattice.scale(TILE));
        d.rotation_deg = Some(t.lattice.angle_deg());
        d
    };
    let n_max = 3 + SYNC_CANDIDATES;
    let identity = Lattice::identity(TILE);
    let mut tested = Vec::with_capacity(n_max);
    for fold in &identity_folds {
        let t = score(fold, &identity);
        let d = decide(&t, n_max);
        if d.detected {
            return d;
        }
        tested.push(t);
    }
    // The full-resolution residual: `search`'s plane when it is one, else made on demand.
    let mut full = match &search {
        SearchPlane::Full(p) => Some(std::borrow::Cow::Borrowed(*p)),
        SearchPlane::Half(_) => None,
    };
    let s = geometry.predicted;
    if (sync::MIN_SCALE..=sync::MAX_SCALE).contains(&s) && (s - 1.0).abs() > PREDICTED_MIN_OFFSET {
        let l = Lattice::scaled(TILE, s);
        let r = full.get_or_insert_with(|| std::borrow::Cow::Owned(full_plane()));
        let t = score(&sync::fold(r, cw, ch, &l, TILE, LATTICE_FOLD_SAMPLES), &l);
        let d = decide(&t, n_max);
        if d.detected {
            return d;
        }
        tested.push(t);
    }
    let lattices: Vec<Lattice> = sync::candidates(search, cw, ch, TILE, SYNC_CANDIDATES)
        .into_iter()
        .filter(|&(l, z)| l != identity && z >= SYNC_MIN_Z)
        .map(|(l, _)| l)
        .collect();
    let n_tested = tested.len() + lattices.len();
    for t in &tested {
        let d = decide(t, n_tested);
        if d.detected {
            return d;
        }
    }
    for l in &lattices {
        let r = full.get_or_insert_with(|| std::borrow::Cow::Owned(full_plane()));
        let t = score(&sync::fold(r, cw, ch, l, TILE, LATTICE_FOLD_SAMPLES), l);
        let d = decide(&t, n_tested);
        if d.detected {
            return d;
        }
        tested.push(t);
    }
    let best = tested.iter().fold(None::<&Tested>, |b, t| match b {
        Some(b) if b.score >= t.score => Some(b),
        _ => Some(t),
    });
    match best {
        Some(t) => decide(t, n_tested),
        None => Detection {
            too_small: false,
            ..Detection::too_small()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::box_mean;

    /// The residual of the whole plane, without strips.
    fn residual_whole(y: &[f32], w: usize, h: usize) -> Vec<f32> {
        let hp: Vec<f32> = y
            .iter()
            .zip(box_mean(y, w, h, 2))
            .map(|(v, m)| v - m)
            .collect();
        let mag: Vec<f32> = hp.iter().map(|v| v.abs()).collect();
        let act = box_mean(&mag, w, h, 3);
        hp.iter()
            .zip(&act)
            .map(|(v, a)| (v / (a + 1.0)).clamp(-4.0, 4.0))
            .collect()
    }

    /// Floyd–Steinberg on whole steps, written directly (float, serpentine,
    /// the error of a zero-change pixel dropped): the reference for
    /// [`Diffusion`]'s fixed-point, register-carried version.
    fn diffusion_reference(rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let w = rows[0].len();
        let mut err = vec![vec![0i32; w + 2]; rows.len() + 1];
        let mut out = Vec::new();
        for (y, row) in rows.iter().enumerate() {
            let fwd = y % 2 == 0;
            let mut o = row.clone();
            let mut carry = 0i32;
            for i in 0..w {
                let x = if fwd { i } else { w - 1 - i };
                if row[x] == 0.0 {
                    carry = 0;
                    continue;
                }
                let v = (row[x] * 256.0 + 0.5).floor() as i32 + err[y][x + 1];
                let t = v + carry + 128;
                o[x] = (t >> 8) as f32;
                let e = (t & 255) - 128;
                carry = (e * 7) >> 4;
                let (e3, e5) = ((e * 3) >> 4, (e * 5) >> 4);
                let g = x + 1;
                let (ahead, behind) = if fwd { (g + 1, g - 1) } else { (g - 1, g + 1) };
                err[y + 1][behind] += e3;
                err[y + 1][g] += e5;
                err[y + 1][ahead] += e - carry - e3 - e5;
            }
            out.push(o);
        }
        out
    }

    #[test]
    fn diffusion_matches_the_direct_reference() {
        let w = 37;
        let rows: Vec<Vec<f32>> = (0..12)
            .map(|y| {
                (0..w)
                    .map(|x| {
                        let v = ((x * 7 + y * 13) as f32 * 0.61).sin() * 2.3;
                        // Runs of exact zeros (unmarked pixels) inside the rows.
                        if (x + 3 * y) % 9 < 2 {
                            0.0
                        } else {
                            v
                        }
                    })
                    .collect()
            })
            .collect();
        let want = diffusion_reference(&rows);
        let mut ed = Diffusion::new(w);
        for (row, want) in rows.iter().zip(&want) {
            let mut d = row.clone();
            ed.quantise_row(&mut d);
            assert_eq!(&d, want);
        }
    }

    #[test]
    fn diffusion_keeps_the_local_mean_of_sub_step_changes() {
        // A constant change of 0.3 steps over 96×96 px: plain rounding gives 0
        // everywhere; error diffusion gives +1 steps on ≈ 30 % of the pixels,
        // spread evenly (every 16×16 block within a few pixels of 30 %).
        let (w, h) = (96, 96);
        let mut ed = Diffusion::new(w);
        let mut out = Vec::with_capacity(w * h);
        for _ in 0..h {
            let mut d = vec![0.3f32; w];
            ed.quantise_row(&mut d);
            out.extend(d);
        }
        assert!(out.iter().all(|&v| v == 0.0 || v == 1.0));
        let mean = out.iter().sum::<f32>() / (w * h) as f32;
        assert!((mean - 0.3).abs() < 0.01, "{mean}");
        for by in 0..h / 16 {
            for bx in 0..w / 16 {
                let n: f32 = (0..16)
                    .flat_map(|y| (0..16).map(move |x| (by * 16 + y) * w + bx * 16 + x))
                    .map(|i| out[i])
                    .sum();
                assert!((n - 0.3 * 256.0).abs() <= 10.0, "block ({bx},{by}): {n}");
            }
        }
        // Negative changes likewise; a zero change stays zero whatever error is pending.
        let mut d = vec![-0.45f32; w];
        ed.quantise_row(&mut d);
        let mut zero = vec![0f32; w];
        ed.quantise_row(&mut zero);
        assert!(zero.iter().all(|&v| v == 0.0));
        assert!(d.iter().all(|&v| v == 0.0 || v == -1.0));
    }

    #[test]
    fn amplitude_is_capped_by_the_activity_in_low_activity_areas() {
        let p = ImageEmbedParams::default();
        let inv = 1.0 / p.activity_ref;
        assert_eq!(amplitude(0.0, p.strength, inv, p.grain_cap, 0.0), 0.0);
        // Low activity: the quadratic cap binds; texture: full strength.
        let a = 0.4;
        assert!(
            (amplitude(a, p.strength, inv, p.grain_cap, 0.0) - p.grain_cap * a * a).abs() < 1e-6
        );
        assert!((amplitude(50.0, p.strength, inv, p.grain_cap, 0.0) - p.strength).abs() < 1e-6);
        // In between: proportional to the activity.
        let a = 2.0;
        let want = p.strength * a / p.activity_ref;
        assert!((amplitude(a, p.strength, inv, p.grain_cap, 0.0) - want).abs() < 1e-6);
    }

    #[test]
    fn strip_residual_matches_whole_plane() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for (w, h) in [(37, 3), (50, 41), (64, 42), (200, 150), (131, 97)] {
            let y: Vec<f32> = (0..w * h)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    ((i % w) as f32) * 0.7 + (x % 64) as f32
                })
                .collect();
            let want = residual_whole(&y, w, h);
            let mut got = Vec::new();
            let mut next = 0;
            residual(
                |r, out| out.copy_from_slice(&y[r * w..][..w]),
                w,
                h,
                |r, row| {
                    assert_eq!(r, next, "rows in order");
                    next += 1;
                    got.extend_from_slice(row);
                },
            );
            assert_eq!(got.len(), w * h);
            let worst = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "{w}x{h}: max difference {worst}");
        }
    }
}
