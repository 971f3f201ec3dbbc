//! Geometric synchronisation of the tiled image mark: recover the scale, rotation
//! (and mild anisotropy) the image went through, from the periodicity of the mark
//! itself, without a separate template.
//!
//! # Method
//! The mark repeats with a 128×128 px period, so the residual of a marked image
//! (after any similarity / affine transform `x' = A·x + t`) is periodic on the
//! lattice spanned by `a1 = A·(128, 0)` and `a2 = A·(0, 128)`. Its autocorrelation
//! therefore has a lattice of peaks at `i·a1 + j·a2` — the self-reference of a
//! periodic watermark (Kutter 1998, *Watermarking resisting to translation, rotation
//! and scaling*, SPIE 3528; the same lattice seen in the Fourier domain is the
//! reciprocal-lattice "template" of Pereira & Pun 2000, *Robust template matching for
//! affine resistant image watermarks*, IEEE TIP 9(6), with the difference that here
//! the template is the mark, so no extra energy is spent on it). Unlike a
//! Fourier–Mellin transform (Lin, Wu, Bloom, Cox, Miller & Lui 2001, *Rotation, scale,
//! and translation resilient watermarking for images*, IEEE TIP 10(5)) no
//! log-polar resampling of the whole image is needed: the lattice is searched
//! directly in the autocorrelation.
//!
//! 1. The locally normalised residual is cut into ≤ 4 blocks of 1024×1024 (zero
//!    padded when smaller; regions of more than 1.6 Mpx are first 2×2 box-averaged
//!    and cut into blocks of 512×512, see [`candidates`]); each block's power
//!    spectrum is *whitened* (divided by
//!    its local 17×17-bin average, which removes the host's spectral envelope) and
//!    *clipped* at [`CLIP`] (so a few strong periodic structures of the host, e.g.
//!    JPEG's 8-px block grid or a brick wall, cannot dominate), and the whitened
//!    spectra are averaged (Bartlett/Welch). The inverse FFT is the autocorrelation.
//! 2. Coarse search over similarity lattices `a1 = ρ(cos φ, sin φ)`,
//!    `a2 = ρ(−sin φ, cos φ)`, period `ρ ∈ [0.45, 2.05]·128` px, `φ ∈ ±3.5°`:
//!    score = autocorrelation summed at `a1, a2, a1 + a2, a1 − a2`.
//! 3. The best few distinct maxima are refined as general lattices (4 free
//!    parameters, so the slightly different x/y factors of an integer-rounded
//!    resize are followed) by hill climbing on the autocorrelation summed over all
//!    lattice points `i·a1 + j·a2`, `|i|,|j| ≤ 3`.
//!
//! 4. Each refined lattice is scored by `z`, its lattice sum in units of the
//!    autocorrelation's noise level; the caller folds only lattices with a large `z`.
//!
//! This step never sees the key: the candidate lattices depend only on the image.
//! The keyed pilot test is then run once per candidate (see `image.rs`), and the
//! p-value is Šidák-corrected for `candidates × 16384` offsets, so it stays honest.

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

use crate::dsp::fft_columns;

/// Side of the FFT blocks of the autocorrelation (full resolution).
const N_FULL: usize = 1024;
/// Side of the FFT blocks when the residual is analysed at half resolution.
const N_HALF: usize = 512;
/// Regions with more pixels than this are searched at half resolution (2×2 box
/// average of the residual; the half-resolution plane still has ≥ 400k pixels).
const DECIMATE_ABOVE: usize = 1_600_000;
/// At most this many blocks are averaged.
const MAX_BLOCKS: usize = 4;
/// Half-width (bins) of the local average that whitens the power spectrum.
const WHITEN_R: usize = 8;
/// Whitened power is clipped at this multiple of its local mean.
const CLIP: f32 = 6.0;
/// Scale range searched (attacked period / original period).
pub(crate) const MIN_SCALE: f64 = 0.45;
pub(crate) const MAX_SCALE: f64 = 2.05;
/// Rotation range searched, degrees.
const MAX_ANGLE_DEG: f64 = 3.5;
/// Coarse-grid scores ordered before the distinct maxima are picked (a peak's
/// neighbourhood, ±2 px in period and in arc, holds ≤ 256 grid points).
const PRESELECT: usize = 2048;

/// The images of the tile's period vectors `(T, 0)` and `(0, T)` in the pixel
/// grid of the image being analysed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lattice {
    pub a1: [f64; 2],
    pub a2: [f64; 2],
}

impl Lattice {
    pub(crate) fn identity(tile: usize) -> Self {
        Self::scaled(tile, 1.0)
    }

    /// The tile magnified `s` times, unrotated.
    pub(crate) fn scaled(tile: usize, s: f64) -> Self {
        let t = tile as f64 * s;
        Self {
            a1: [t, 0.0],
            a2: [0.0, t],
        }
    }

    /// Linear scale factor (square root of the area ratio).
    pub(crate) fn scale(&self, tile: usize) -> f64 {
        self.det().abs().sqrt() / tile as f64
    }

    /// Rotation of `a1` from the x axis, degrees.
    pub(crate) fn angle_deg(&self) -> f64 {
        self.a1[1].atan2(self.a1[0]).to_degrees()
    }

    fn det(&self) -> f64 {
        self.a1[0] * self.a2[1] - self.a2[0] * self.a1[1]
    }

    fn point(&self, i: f64, j: f64) -> [f64; 2] {
        [
            i * self.a1[0] + j * self.a2[0],
            i * self.a1[1] + j * self.a2[1],
        ]
    }

    fn get(&self, k: usize) -> f64 {
        match k {
            0 => self.a1[0],
            1 => self.a1[1],
            2 => self.a2[0],
            _ => self.a2[1],
        }
    }

    fn with(mut self, k: usize, v: f64) -> Self {
        match k {
            0 => self.a1[0] = v,
            1 => self.a1[1] = v,
            2 => self.a2[0] = v,
            _ => self.a2[1] = v,
        }
        self
    }

    fn similar(&self, o: &Self, tol: f64) -> bool {
        (0..4).all(|k| (self.get(k) - o.get(k)).abs() <= tol)
    }
}

/// Circular box mean over the `n`×`n` plane `src`, half-width `r`, into `dst`;
/// `tmp` (`n`×`n`) holds the horizontal pass.
pub(crate) fn circular_box(src: &[f32], tmp: &mut [f32], dst: &mut [f32], n: usize, r: usize) {
    let win = (2 * r + 1) as f32;
    for (row, line) in src.chunks_exact(n).zip(tmp.chunks_exact_mut(n)) {
        let mut acc: f32 = (0..=2 * r).map(|k| row[(k + n - r) % n]).sum();
        // add index x + r + 1 and sub index x − r, both mod n, stepped without `%`.
        let (mut add, mut sub) = ((r + 1) % n, (n - r) % n);
        for l in line.iter_mut() {
            *l = acc / win;
            acc += row[add] - row[sub];
            add += 1;
            if add == n {
                add = 0;
            }
            sub += 1;
            if sub == n {
                sub = 0;
            }
        }
    }
    let mut acc = vec![0f32; n];
    for k in 0..=2 * r {
        let y = (k + n - r) % n;
        for (a, v) in acc.iter_mut().zip(&tmp[y * n..(y + 1) * n]) {
            *a += v;
        }
    }
    for y in 0..n {
        for (o, a) in dst[y * n..(y + 1) * n].iter_mut().zip(&acc) {
            *o = a / win;
        }
        let (add, sub) = ((y + r + 1) % n, (y + n - r) % n);
        let (ar, sr) = (&tmp[add * n..][..n], &tmp[sub * n..][..n]);
        for ((a, &p), &m) in acc.iter_mut().zip(ar).zip(sr) {
            *a += p - m;
        }
    }
}

/// Block origins covering `len` with blocks of `N` (one block, zero padded, when
/// `len ≤ N`; one centred block when `len ≤ 9N/8`, as a second one would repeat
/// ≥ 7/8 of the first).
fn block_starts<const N: usize>(len: usize, max: usize) -> Vec<usize> {
    if len <= N {
        return vec![0];
    }
    if len <= N + N / 8 {
        return vec![(len - N) / 2];
    }
    let k = len.div_ceil(N).min(max).max(2);
    (0..k).map(|i| i * (len - N) / (k - 1)).collect()
}

/// Autocorrelation (`N`×`N`, lag (dx, dy) at `[dy mod N][dx mod N]`) of the
/// whitened, clipped residual, averaged over up to [`MAX_BLOCKS`] blocks.
///
/// Two real blocks share one complex FFT (`A + iB`; `X_A(k) = (Z(k) + Z*(−k))/2`,
/// `X_B(k) = (Z(k) − Z*(−k))/2i`), so `b` blocks cost `⌈b/2⌉ + 1` 2-D FFTs.
fn whitened_autocorrelation<const N: usize>(r: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut planner = FftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(N);
    let inv = planner.plan_fft_inverse(N);
    let xs = block_starts::<N>(w, 2);
    let ys = block_starts::<N>(h, 2);
    let blocks: Vec<(usize, usize)> = ys
        .iter()
        .flat_map(|&y0| xs.iter().map(move |&x0| (x0, y0)))
        .take(MAX_BLOCKS)
        .collect();
    let (bw, bh) = (w.min(N), h.min(N));
    let mut avg = vec![0f32; N * N];
    let mut buf = vec![Complex::new(0f32, 0.0); N * N];
    let mut p = vec![0f32; N * N];
    let mut env = vec![0f32; N * N];
    let mut hpass = vec![0f32; N * N];
    for pair in blocks.chunks(2) {
        buf.iter_mut().for_each(|c| *c = Complex::new(0.0, 0.0));
        for (part, &(x0, y0)) in pair.iter().enumerate() {
            for y in 0..bh {
                let src = &r[(y0 + y) * w + x0..(y0 + y) * w + x0 + bw];
                for (d, &s) in buf[y * N..y * N + bw].iter_mut().zip(src) {
                    if part == 0 {
                        d.re = s;
                    } else {
                        d.im = s;
                    }
                }
            }
        }
        for row in buf[..bh * N].chunks_exact_mut(N) {
            fwd.process(row);
        }
        fft_columns(&mut buf, N, N, fwd.as_ref());
        for part in 0..pair.len() {
            for (k, pv) in p.iter_mut().enumerate() {
                let (i, j) = (k / N, k % N);
                let z = buf[k];
                let zm = buf[((N - i) & (N - 1)) * N + ((N - j) & (N - 1))].conj();
                let x = if pair.len() == 1 {
                    z
                } else if part == 0 {
                    (z + zm) * 0.5
                } else {
                    (z - zm) * 0.5
                };
                *pv = x.norm_sqr();
            }
            p[0] = 0.0;
            circular_box(&p, &mut hpass, &mut env, N, WHITEN_R);
            for ((a, &v), &e) in avg.iter_mut().zip(&p).zip(&env) {
                if e > 0.0 {
                    *a += (v / e).min(CLIP);
                }
            }
        }
    }
    for (c, &v) in buf.iter_mut().zip(&avg) {
        *c = Complex::new(v, 0.0);
    }
    for row in buf.chunks_exact_mut(N) {
        inv.process(row);
    }
    fft_columns(&mut buf, N, N, inv.as_ref());
    buf.iter().map(|c| c.re).collect()
}

/// Bilinear read of the circular autocorrelation at a real lag.
fn acf_at<const N: usize>(acf: &[f32], lag: [f64; 2]) -> f64 {
    // Shift by a multiple of N so that the coordinates are positive: truncation is
    // then floor (no libm call), and `& (N - 1)` the wrap (N is a power of two ≤ 2^14).
    const OFF: f64 = 16384.0;
    let (sx, sy) = (
        (lag[0] + OFF).clamp(0.0, 2.0 * OFF),
        (lag[1] + OFF).clamp(0.0, 2.0 * OFF),
    );
    let (ix, iy) = (sx as usize, sy as usize);
    let (tx, ty) = (sx - ix as f64, sy - iy as f64);
    let (x0, y0) = (ix & (N - 1), iy & (N - 1));
    let (x1, y1) = ((x0 + 1) & (N - 1), (y0 + 1) & (N - 1));
    let v = |x: usize, y: usize| f64::from(acf[y * N + x]);
    (1.0 - ty) * ((1.0 - tx) * v(x0, y0) + tx * v(x1, y0))
        + ty * ((1.0 - tx) * v(x0, y1) + tx * v(x1, y1))
}

/// `B(p) = A(p) + A(R p)` on the grid, `R` the rotation by 90° (`(x, y) ↦
/// (−y, x)`, circular). The grid is invariant under `R`, so a bilinear read of
/// `B` at any real `p` equals the sum of the bilinear reads of `A` at `p` and
/// `R p`.
///
/// In 16×16 tiles, so that the column reads of `A` touch whole cache lines.
fn rot90_sum<const N: usize>(acf: &[f32]) -> Vec<f32> {
    const B: usize = 16;
    let mut b = acf.to_vec();
    for by in (0..N).step_by(B) {
        for bx in (0..N).step_by(B) {
            for y in by..(by + B).min(N) {
                let col = (N - y) % N;
                let row = &mut b[y * N..(y + 1) * N];
                for x in bx..(bx + B).min(N) {
                    row[x] += acf[x * N + col];
                }
            }
        }
    }
    b
}

/// Coarse score of a square lattice (`a2 = R a1`) from [`rot90_sum`]'s `b`:
/// the autocorrelation at `a1`, `a2`, `a1 + a2 = R(a1 − a2)` and `a1 − a2`,
/// in two reads.
fn coarse_score<const N: usize>(b: &[f32], l: &Lattice) -> f64 {
    acf_at::<N>(b, l.a1) + acf_at::<N>(b, l.point(1.0, -1.0))
}

/// The lattice points of a half plane, `|i|, |j| ≤ 3`, within reach of the autocorrelation
/// (lags below `0.47 N` on both axes).
fn fine_points<const N: usize>(l: &Lattice) -> impl Iterator<Item = [f64; 2]> + '_ {
    let reach = 0.47 * N as f64;
    (0..=3i32)
        .flat_map(|i| (-3..=3i32).map(move |j| (i, j)))
        .filter(|&(i, j)| i > 0 || j > 0)
        .map(|(i, j)| l.point(f64::from(i), f64::from(j)))
        .filter(move |p| p[0].abs() < reach && p[1].abs() < reach)
}

/// Sum of the autocorrelation over [`fine_points`].
fn fine_score<const N: usize>(acf: &[f32], l: &Lattice) -> f64 {
    fine_points::<N>(l).map(|p| acf_at::<N>(acf, p)).sum()
}

fn refine<const N: usize>(acf: &[f32], mut l: Lattice) -> Lattice {
    let mut best = fine_score::<N>(acf, &l);
    let mut step = 0.25;
    while step > 0.01 {
        let mut improved = true;
        let mut guard = 0;
        while improved && guard < 40 {
            improved = false;
            guard += 1;
            for k in 0..4 {
                for d in [-step, step] {
                    let c = l.with(k, l.get(k) + d);
                    let s = fine_score::<N>(acf, &c);
                    if s > best {
                        best = s;
                        l = c;
                        improved = true;
                    }
                }
            }
        }
        step /= 2.0;
    }
    l
}

/// Up to `max` distinct candidate lattices for the residual `r` (`w`×`h`), best
/// first, in `r`'s pixels, each with its score `z`: the autocorrelation summed over
/// the lattice points `i·a1 + j·a2` (`|i|, |j| ≤ 3`, half plane, within reach),
/// divided by `σ·√(points)`, σ the autocorrelation's noise level (1.2533 × its mean
/// absolute value at lags 8 … 0.47 N). Depends only on the image, never on the key.
/// `plane`: the residual, or for a [`decimated`] `w`×`h` plane only its
/// [`HalfPlane`] (a full plane is then averaged here).
///
/// Regions of more than [`DECIMATE_ABOVE`] pixels are searched on the 2×2 box
/// average of `r` (the mark's chips are 2×2 px, so at scales ≳ 1 it survives the
/// averaging while the host's finest texture is attenuated) with blocks of
/// [`N_HALF`]², i.e. the same lag reach in full-resolution pixels at a quarter of
/// the cost; the lattices found are scaled back ×2.
pub(crate) fn candidates(
    plane: SearchPlane<'_>,
    w: usize,
    h: usize,
    tile: usize,
    max: usize,
) -> Vec<(Lattice, f64)> {
    if max == 0 || w < 16 || h < 16 {
        return Vec::new();
    }
    let half = match plane {
        SearchPlane::Full(r) if !decimated(w, h) => return search::<N_FULL>(r, w, h, tile, max),
        SearchPlane::Full(r) => {
            let mut p = HalfPlane::new(w, h);
            for (y, row) in r.chunks_exact(w).enumerate() {
                p.add_row(y, row);
            }
            p
        }
        SearchPlane::Half(p) => p,
    };
    let (hw, hh) = (half.w, half.h);
    let half = half.plane;
    search::<N_HALF>(&half, hw, hh, tile / 2, max)
        .into_iter()
        .map(|(l, z)| {
            let l = Lattice {
                a1: [2.0 * l.a1[0], 2.0 * l.a1[1]],
                a2: [2.0 * l.a2[0], 2.0 * l.a2[1]],
            };
            (l, z)
        })
        .collect()
}

/// [`candidates`] on a plane analysed with `N`×`N` blocks; `tile` and the
/// lattices in this plane's pixels.
fn search<const N: usize>(
    r: &[f32],
    w: usize,
    h: usize,
    tile: usize,
    max: usize,
) -> Vec<(Lattice, f64)> {
    let acf = whitened_autocorrelation::<N>(r, w, h);
    let b = rot90_sum::<N>(&acf);
    let t = tile as f64;
    let mut scored: Vec<(f64, f64, f64)> = Vec::new(); // (score, rho, phi)
    let max_phi = MAX_ANGLE_DEG.to_radians();
    let mut rho = MIN_SCALE * t;
    while rho <= MAX_SCALE * t {
        let dphi = 0.25 / rho;
        let mut phi = -max_phi;
        while phi <= max_phi {
            let (c, s) = (rho * phi.cos(), rho * phi.sin());
            let l = Lattice {
                a1: [c, s],
                a2: [-s, c],
            };
            scored.push((coarse_score::<N>(&b, &l), rho, phi));
            phi += dphi;
        }
        rho += 0.25;
    }
    // The best `max` mutually distinct grid points, in descending score. Only the top
    // of the ~10⁴ scores matters: order a preselected top `PRESELECT` first, and the
    // whole list only if that does not hold `max` distinct points.
    let by_score = |a: &(f64, f64, f64), b: &(f64, f64, f64)| b.0.total_cmp(&a.0);
    let pick = |sorted: &[(f64, f64, f64)]| {
        let mut picked: Vec<(f64, f64)> = Vec::new();
        for &(_, rho, phi) in sorted {
            if picked.len() >= max {
                break;
            }
            let distinct = picked
                .iter()
                .all(|&(r0, p0)| (rho - r0).abs() > 2.0 || (phi - p0).abs() * rho > 2.0);
            if distinct {
                picked.push((rho, phi));
            }
        }
        picked
    };
    let mut picked = Vec::new();
    if scored.len() > PRESELECT {
        let mut top = scored.clone();
        top.select_nth_unstable_by(PRESELECT, by_score);
        top.truncate(PRESELECT);
        top.sort_unstable_by(by_score);
        picked = pick(&top);
    }
    if picked.len() < max {
        scored.sort_unstable_by(by_score);
        picked = pick(&scored);
    }
    // Noise level of the autocorrelation away from the origin: σ ≈ 1.2533 · mean |acf|
    // (Gaussian), over lags with 8 ≤ max(|dx|, |dy|) < 0.47 N.
    let reach = (0.47 * N as f64) as usize;
    let (mut sa, mut na) = (0f64, 0usize);
    for (y, row) in acf.chunks_exact(N).enumerate() {
        let dy = y.min(N - y);
        if dy >= reach {
            continue;
        }
        // Columns with dx = min(x, N − x) < reach, without dx < 8 when dy < 8.
        let inner = if dy < 8 { 8 } else { 0 };
        for part in [
            &row[inner..reach],
            &row[N - reach + 1..N + 1 - inner.max(1)],
        ] {
            sa += part.iter().map(|&v| f64::from(v.abs())).sum::<f64>();
            na += part.len();
        }
    }
    let sigma = 1.2533 * sa / na.max(1) as f64;
    let mut out: Vec<(Lattice, f64)> = Vec::new();
    for (rho, phi) in picked {
        let (c, s) = (rho * phi.cos(), rho * phi.sin());
        let l = refine::<N>(
            &acf,
            Lattice {
                a1: [c, s],
                a2: [-s, c],
            },
        );
        if !out.iter().any(|o| o.0.similar(&l, 0.05)) {
            let z = fine_score::<N>(&acf, &l) / (sigma * (fine_count::<N>(&l) as f64).sqrt());
            out.push((l, if sigma > 0.0 { z } else { 0.0 }));
        }
    }
    out
}

/// Number of lattice points [`fine_score`] sums (at least 1).
fn fine_count<const N: usize>(l: &Lattice) -> usize {
    fine_points::<N>(l).count().max(1)
}

/// The identity-lattice fold of [`fold`], fed one residual row at a time (so
/// that it can run while the rows are still in cache): pixel `(x, y)` of the
/// centred `fw`×`fh` part (at most `max_samples` pixels) of a `w`×`h` plane is
/// summed into `out[y mod T][x mod T]`.
pub(crate) struct IdentityFold {
    tile: usize,
    x0: usize,
    x1: usize,
    y0: usize,
    y1: usize,
    acc: Vec<f32>,
    out: Vec<f64>,
}

impl IdentityFold {
    pub(crate) fn new(w: usize, h: usize, tile: usize, max_samples: usize) -> Self {
        let side = (max_samples as f64).sqrt() as usize;
        let (fw, fh) = (w.min(side), h.min(side));
        let (x0, y0) = ((w - fw) / 2, (h - fh) / 2);
        Self {
            tile,
            x0,
            x1: x0 + fw,
            y0,
            y1: y0 + fh,
            acc: vec![0f32; tile],
            out: vec![0f64; tile * tile],
        }
    }

    /// Adds row `y` (the whole plane row, `w` long).
    pub(crate) fn add_row(&mut self, y: usize, row: &[f32]) {
        if y < self.y0 || y >= self.y1 {
            return;
        }
        let tile = self.tile;
        let row = &row[self.x0..self.x1];
        // Pixel x0 + i goes to column (x0 + i) mod tile: a first partial run, then
        // whole tile periods (f32 within a row, f64 across rows).
        let k0 = self.x0 % tile;
        let (head, rest) = row.split_at((tile - k0).min(row.len()));
        for (a, &v) in self.acc[k0..].iter_mut().zip(head) {
            *a += v;
        }
        for chunk in rest.chunks(tile) {
            for (a, &v) in self.acc.iter_mut().zip(chunk) {
                *a += v;
            }
        }
        let frow = &mut self.out[(y % tile) * tile..][..tile];
        for (o, a) in frow.iter_mut().zip(self.acc.iter_mut()) {
            *o += f64::from(*a);
            *a = 0.0;
        }
    }

    /// The folded tile (`T`×`T`, row-major).
    pub(crate) fn finish(self) -> Vec<f64> {
        self.out
    }
}

/// What [`candidates`] searches: the full-resolution residual, or (for a
/// [`decimated`] plane) only its 2×2 average, built while the residual was computed.
pub(crate) enum SearchPlane<'a> {
    Full(&'a [f32]),
    Half(HalfPlane),
}

/// Whether [`candidates`] searches a `w`×`h` plane at half resolution.
pub(crate) fn decimated(w: usize, h: usize) -> bool {
    w * h > DECIMATE_ABOVE
}

/// The 2×2 box average (`⌊w/2⌋`×`⌊h/2⌋`) of a plane fed one row at a time, for
/// [`candidates`] on planes that are [`decimated`].
pub(crate) struct HalfPlane {
    w: usize,
    pending: Vec<f32>,
    plane: Vec<f32>,
    h: usize,
}

impl HalfPlane {
    pub(crate) fn new(w: usize, h: usize) -> Self {
        Self {
            w: w / 2,
            pending: vec![0f32; w / 2],
            plane: Vec::with_capacity((w / 2) * (h / 2)),
            h: h / 2,
        }
    }

    /// Adds row `y` (rows in order, each `w` long).
    pub(crate) fn add_row(&mut self, y: usize, row: &[f32]) {
        if y / 2 >= self.h {
            return;
        }
        let pairs = row[..2 * self.w].chunks_exact(2);
        if y.is_multiple_of(2) {
            for (p, a) in self.pending.iter_mut().zip(pairs) {
                *p = a[0] + a[1];
            }
        } else {
            self.plane.extend(
                self.pending
                    .iter()
                    .zip(pairs)
                    .map(|(&p, b)| 0.25 * (p + b[0] + b[1])),
            );
        }
    }
}

/// Fold the residual `r` (`w`×`h`) modulo the tile in the *tile's* frame: tile
/// pixel `u` (integer, any sign) is read at `c + A·u` (bilinear), where `A`'s
/// columns are `a1/T`, `a2/T` and `c` the centre of `r`, and accumulated at
/// `u mod T`. At most `max_samples` tile-frame pixels are read (a centred part).
pub(crate) fn fold(
    r: &[f32],
    w: usize,
    h: usize,
    l: &Lattice,
    tile: usize,
    max_samples: usize,
) -> Vec<f64> {
    let t = tile as f64;
    let a = [l.a1[0] / t, l.a2[0] / t, l.a1[1] / t, l.a2[1] / t]; // row-major 2×2
    let det = a[0] * a[3] - a[1] * a[2];
    let mut out = vec![0f64; tile * tile];
    if det.abs() < 1e-9 || w < 2 || h < 2 {
        return out;
    }
    if *l == Lattice::identity(tile) {
        let mut f = IdentityFold::new(w, h, tile, max_samples);
        for (y, row) in r.chunks_exact(w).enumerate() {
            f.add_row(y, row);
        }
        return f.finish();
    }
    let inv = [a[3] / det, -a[1] / det, -a[2] / det, a[0] / det];
    let (cx, cy) = ((w / 2) as f64, (h / 2) as f64);
    // Bounding box of the image in the tile frame.
    let (hx, hy) = (w as f64 / 2.0, h as f64 / 2.0);
    let ux = hx * inv[0].abs() + hy * inv[1].abs();
    let uy = hx * inv[2].abs() + hy * inv[3].abs();
    let area = 4.0 * ux * uy;
    let shrink = if area > max_samples as f64 {
        (max_samples as f64 / area).sqrt()
    } else {
        1.0
    };
    let (ux, uy) = ((ux * shrink).ceil() as i64, (uy * shrink).ceil() as i64);
    let (wm, hm) = ((w - 1) as f64, (h - 1) as f64);
    let ti = tile as i64;
    for v in -uy..=uy {
        let frow = &mut out[(v.rem_euclid(ti) as usize) * tile..][..tile];
        let vf = v as f64;
        // Row of the tile frame: x(u) = bx + a0·u, y(u) = by + a2·u. The u for which
        // 0 ≤ x < wm and 0 ≤ y < hm form an interval; compute it once per row (the
        // per-sample test below stays, against rounding at the ends).
        let (bx, by) = (cx + a[1] * vf, cy + a[3] * vf);
        let (mut lo, mut hi) = (-ux as f64, ux as f64);
        for (b, d, m) in [(bx, a[0], wm), (by, a[2], hm)] {
            if d.abs() < 1e-12 {
                if !(b >= 0.0 && b < m) {
                    hi = lo - 1.0;
                }
            } else {
                let (t0, t1) = (-b / d, (m - b) / d);
                lo = lo.max(t0.min(t1));
                hi = hi.min(t0.max(t1));
            }
        }
        if hi < lo {
            continue;
        }
        let (u0, u1) = ((lo.floor() as i64).max(-ux), (hi.ceil() as i64).min(ux));
        let mut k = u0.rem_euclid(ti) as usize;
        let mut acc = [0f32; 256];
        let acc = &mut acc[..tile.min(256)];
        let big = tile > 256;
        // Fixed-point stepping along the row (32 fractional bits; the rounding of
        // the step accumulates to < 1e-6 px over any row).
        const ONE: f64 = 4_294_967_296.0;
        let (x_start, y_start) = (bx + a[0] * u0 as f64, by + a[2] * u0 as f64);
        let mut fxp = (x_start * ONE).round() as i64;
        let mut fyp = (y_start * ONE).round() as i64;
        let (dx, dy) = ((a[0] * ONE).round() as i64, (a[2] * ONE).round() as i64);
        let (xmax, ymax) = ((w as i64 - 1) << 32, (h as i64 - 1) << 32);
        for _ in u0..=u1 {
            if fxp >= 0 && fyp >= 0 && fxp < xmax && fyp < ymax {
                let (x0, y0) = ((fxp >> 32) as usize, (fyp >> 32) as usize);
                let fx = (fxp & 0xffff_ffff) as f32 * (1.0 / ONE as f32);
                let fy = (fyp & 0xffff_ffff) as f32 * (1.0 / ONE as f32);
                let i = y0 * w + x0;
                let top = r[i] + fx * (r[i + 1] - r[i]);
                let bot = r[i + w] + fx * (r[i + w + 1] - r[i + w]);
                let val = top + fy * (bot - top);
                if big {
                    frow[k] += f64::from(val);
                } else {
                    acc[k] += val;
                }
            }
            fxp += dx;
            fyp += dy;
            k += 1;
            if k == tile {
                k = 0;
            }
        }
        if !big {
            for (o, &s) in frow.iter_mut().zip(acc.iter()) {
                *o += f64::from(s);
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The two-read coarse score on `rot90_sum` equals the four bilinear reads
    /// of the autocorrelation it replaces, at arbitrary real lattices.
    #[test]
    fn rot90_sum_gives_the_four_point_coarse_score() {
        const N: usize = 64;
        let acf: Vec<f32> = (0..N * N)
            .map(|k| ((k * 7919) % 1013) as f32 / 1013.0 - 0.5)
            .collect();
        let b = rot90_sum::<N>(&acf);
        for (rho, phi) in [(10.3, 0.02), (17.77, -0.05), (25.0, 0.0), (30.1, 0.061)] {
            let (c, s) = (rho * f64::cos(phi), rho * f64::sin(phi));
            let l = Lattice {
                a1: [c, s],
                a2: [-s, c],
            };
            let four = acf_at::<N>(&acf, l.a1)
                + acf_at::<N>(&acf, l.a2)
                + acf_at::<N>(&acf, l.point(1.0, 1.0))
                + acf_at::<N>(&acf, l.point(1.0, -1.0));
            let two = coarse_score::<N>(&b, &l);
            assert!((four - two).abs() < 1e-5, "{rho} {phi}: {four} vs {two}");
        }
    }

    /// A random ±1 pattern of 2×2 chips with period 128, scaled by `sc` and rotated
    /// by `deg` (nearest-neighbour sampling), plus white noise 3× its amplitude.
    fn synthetic(w: usize, h: usize, sc: f64, deg: f64) -> Vec<f32> {
        let mut s = 99u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32) / (1u64 << 24) as f32 - 0.5
        };
        let tile: Vec<f32> = (0..64 * 64).map(|_| rnd().signum()).collect();
        let th = deg.to_radians();
        let mut r = vec![0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f64 / sc, y as f64 / sc);
                let u = th.cos() * xf + th.sin() * yf;
                let v = -th.sin() * xf + th.cos() * yf;
                let (cu, cv) = (
                    (u.rem_euclid(128.0) / 2.0) as usize % 64,
                    (v.rem_euclid(128.0) / 2.0) as usize % 64,
                );
                r[y * w + x] = tile[cv * 64 + cu] + 3.0 * rnd();
            }
        }
        r
    }

    #[test]
    fn finds_scaled_rotated_lattice() {
        let (w, h) = (700usize, 600usize);
        let r = synthetic(w, h, 0.8, 1.5);
        let c = candidates(SearchPlane::Full(&r), w, h, 128, 3);
        let l = c[0].0;
        assert!((l.scale(128) - 0.8).abs() < 0.003, "{l:?}");
        assert!((l.angle_deg() - 1.5).abs() < 0.1, "{l:?}");
    }

    #[test]
    fn finds_lattice_at_half_resolution() {
        // Above DECIMATE_ABOVE: searched on the 2×2 average with 512² blocks.
        let (w, h) = (1400usize, 1200usize);
        assert!(w * h > DECIMATE_ABOVE);
        for (sc, deg) in [(1.3, -2.0), (0.75, 2.0)] {
            let r = synthetic(w, h, sc, deg);
            let c = candidates(SearchPlane::Full(&r), w, h, 128, 3);
            let l = c[0].0;
            assert!((l.scale(128) - sc).abs() < 0.004, "{sc} {deg} {l:?}");
            assert!((l.angle_deg() - deg).abs() < 0.1, "{sc} {deg} {l:?}");
        }
    }
}
