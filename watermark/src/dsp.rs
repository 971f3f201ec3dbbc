//! Shared DSP helpers: separable box filter, 2-D FFT, windowed-sinc resampler.

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftNum, FftPlanner};

/// Separable box mean of a `w`×`h` plane with half-width `r` (window `2r+1`),
/// averaging over the part of the window inside the image (no padding bias), in `f32`:
/// shifted-slice sums along rows, then running sums down columns, both vectorised over x.
#[cfg(test)]
pub(crate) fn box_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut tmp = vec![0f32; w * h];
    box_rows(src, w, r, &mut tmp);
    let mut out = vec![0f32; w * h];
    box_cols(&tmp, w, h, r, &mut out);
    out
}

/// Horizontal pass of [`box_mean`] (rows of width `w`) from `src` into `dst`.
pub(crate) fn box_rows(src: &[f32], w: usize, r: usize, dst: &mut [f32]) {
    let n = 2 * r + 1;
    let inv = 1.0 / n as f32;
    let mut pair = vec![0f32; w.saturating_sub(1)];
    for (row, out) in src.chunks_exact(w).zip(dst.chunks_exact_mut(w)) {
        // Interior: sums of shifted slices (no loop-carried dependency, vectorises),
        // through pairwise sums `pair[x] = row[x] + row[x+1]`: box5 = pair[x] +
        // pair[x+2] + row[x+4], box7 = pair[x] + pair[x+2] + pair[x+4] + row[x+6],
        // each one pass (half the loads and a third of the stores of 2r+1 passes).
        if w > 2 * r {
            let m = w - 2 * r;
            let inner = &mut out[r..r + m];
            for (p, (a, b)) in pair.iter_mut().zip(row.iter().zip(&row[1..])) {
                *p = a + b;
            }
            let last = &row[2 * r..2 * r + m];
            match r {
                2 => {
                    let it = pair.iter().zip(&pair[2..]).zip(last);
                    for (o, ((a, b), c)) in inner.iter_mut().zip(it) {
                        *o = (a + b + c) * inv;
                    }
                }
                3 => {
                    let it = pair.iter().zip(&pair[2..]).zip(&pair[4..]).zip(last);
                    for (o, (((a, b), c), d)) in inner.iter_mut().zip(it) {
                        *o = (a + b + c + d) * inv;
                    }
                }
                _ => {
                    inner.copy_from_slice(last);
                    for k in 0..r {
                        for (o, v) in inner.iter_mut().zip(&pair[2 * k..]) {
                            *o += v;
                        }
                    }
                    for o in inner.iter_mut() {
                        *o *= inv;
                    }
                }
            }
        }
        box_row_borders(row, r, out);
    }
}

/// Borders of a [`box_rows`] row: the mean over the part of the window inside the row.
fn box_row_borders(row: &[f32], r: usize, out: &mut [f32]) {
    let w = row.len();
    for x in (0..r.min(w)).chain(w.saturating_sub(r).max(r.min(w))..w) {
        let (a, b) = (x.saturating_sub(r), (x + r + 1).min(w));
        out[x] = row[a..b].iter().sum::<f32>() / (b - a) as f32;
    }
}

/// Vertical pass of [`box_mean`] from `src` into `dst`.
#[cfg(test)]
pub(crate) fn box_cols(src: &[f32], w: usize, h: usize, r: usize, dst: &mut [f32]) {
    box_cols_map(src, w, h, r, |y, mean| {
        dst[y * w..(y + 1) * w].copy_from_slice(mean);
    });
}

/// Vertical pass of [`box_mean`] over `src` (rows of width `w`, `h` rows): calls
/// `f(y, mean)` for every row `y` with the row of window means, so that the caller
/// can combine it with other planes in the same pass (no intermediate plane).
pub(crate) fn box_cols_map(
    src: &[f32],
    w: usize,
    h: usize,
    r: usize,
    mut f: impl FnMut(usize, &[f32]),
) {
    let mut mean = vec![0f32; w];
    let mut acc = vec![0f32; w];
    for row in src.chunks_exact(w).take(r + 1) {
        for (a, v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
    for y in 0..h {
        let (a, b) = (y.saturating_sub(r), (y + r + 1).min(h));
        let inv = 1.0 / (b - a) as f32;
        for (o, s) in mean.iter_mut().zip(&acc) {
            *o = s * inv;
        }
        f(y, &mean);
        let add = (y + r + 1 < h).then(|| &src[(y + r + 1) * w..][..w]);
        let sub = (y >= r).then(|| &src[(y - r) * w..][..w]);
        match (add, sub) {
            (Some(a), Some(s)) => {
                for ((acc, a), s) in acc.iter_mut().zip(a).zip(s) {
                    *acc += a - s;
                }
            }
            (Some(a), None) => {
                for (acc, a) in acc.iter_mut().zip(a) {
                    *acc += a;
                }
            }
            (None, Some(s)) => {
                for (acc, s) in acc.iter_mut().zip(s) {
                    *acc -= s;
                }
            }
            (None, None) => {}
        }
    }
}

/// In-place 2-D FFT of an `n`×`n` row-major complex array (unnormalised forward;
/// the inverse is scaled by `1/n²`).
pub(crate) fn fft2(data: &mut [Complex<f64>], n: usize, inverse: bool) {
    let mut planner = FftPlanner::<f64>::new();
    let fft = if inverse {
        planner.plan_fft_inverse(n)
    } else {
        planner.plan_fft_forward(n)
    };
    for row in data.chunks_exact_mut(n) {
        fft.process(row);
    }
    fft_columns(data, n, n, fft.as_ref());
    if inverse {
        let s = 1.0 / (n * n) as f64;
        for v in data.iter_mut() {
            *v *= s;
        }
    }
}

/// In-place FFT of every column of a row-major `rows`×`cols` complex array
/// (`fft.len() == rows`), in place of a transpose – row FFTs – transpose.
///
/// Columns are processed in groups of one cache line (8 `Complex<f32>` or 4
/// `Complex<f64>`): each row's part of the group is read and written as one
/// line, and the group's columns are transformed contiguously in a scratch
/// whose row stride is padded off a power of two (a stride of a multiple of
/// 4 KiB puts every column in the same cache set).
pub(crate) fn fft_columns<T: FftNum>(
    data: &mut [Complex<T>],
    rows: usize,
    cols: usize,
    fft: &dyn Fft<T>,
) {
    debug_assert_eq!(fft.len(), rows);
    debug_assert_eq!(data.len(), rows * cols);
    let g = (64 / std::mem::size_of::<Complex<T>>()).max(1);
    let stride = rows + g;
    let zero = Complex::new(T::zero(), T::zero());
    let mut scratch = vec![zero; g * stride];
    let mut work = vec![zero; fft.get_inplace_scratch_len()];
    for c0 in (0..cols).step_by(g) {
        let k = g.min(cols - c0);
        for (y, row) in data.chunks_exact(cols).enumerate() {
            for (j, &v) in row[c0..c0 + k].iter().enumerate() {
                scratch[j * stride + y] = v;
            }
        }
        for j in 0..k {
            fft.process_with_scratch(&mut scratch[j * stride..j * stride + rows], &mut work);
        }
        for (y, row) in data.chunks_exact_mut(cols).enumerate() {
            for (j, v) in row[c0..c0 + k].iter_mut().enumerate() {
                *v = scratch[j * stride + y];
            }
        }
    }
}

fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..50 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

/// Zero-phase Kaiser-windowed-sinc resampler: output sample `n` is the band-limited
/// interpolation of `x` at input time `n·fs_in/fs_out`, so time 0 maps to time 0
/// (no delay). Cut-off at 0.45·min(fs_in, fs_out). Output length
/// `ceil(len·fs_out/fs_in)`.
pub(crate) fn resample(x: &[f32], fs_in: u32, fs_out: u32) -> Vec<f32> {
    resample_zc(x, fs_in, fs_out, 12.0)
}

/// [`resample`] with `zc` zero crossings of the kernel each side (fewer: faster,
/// wider transition band).
pub(crate) fn resample_zc(x: &[f32], fs_in: u32, fs_out: u32, zc: f64) -> Vec<f32> {
    if fs_in == fs_out || x.is_empty() {
        return x.to_vec();
    }
    const TABLE: usize = 8192;
    const BETA: f64 = 8.0;
    let fi = f64::from(fs_in);
    let fo = f64::from(fs_out);
    let fc = 0.45 * fi.min(fo); // Hz
    let nyq_ratio = 2.0 * fc / fi; // cutoff in cycles per input sample ×2
    let half = zc / nyq_ratio; // half-width in input samples
                               // kernel table over u = |t|/half in [0,1]
    let i0b = bessel_i0(BETA);
    let table: Vec<f64> = (0..=TABLE + 1)
        .map(|i| {
            let u = (i as f64 / TABLE as f64).min(1.0);
            let t = u * half;
            let arg = std::f64::consts::PI * nyq_ratio * t;
            let sinc = if arg.abs() < 1e-12 {
                1.0
            } else {
                arg.sin() / arg
            };
            let win = bessel_i0(BETA * (1.0 - u * u).max(0.0).sqrt()) / i0b;
            nyq_ratio * sinc * win
        })
        .collect();
    let out_len = ((x.len() as f64) * fo / fi).ceil() as usize;
    let kernel = |d: f64| -> f64 {
        let u = (d.abs() / half) * TABLE as f64;
        let i = u as usize;
        if i < TABLE {
            let f = u - i as f64;
            table[i] + (table[i + 1] - table[i]) * f
        } else {
            0.0
        }
    };
    let g = gcd(fs_in, fs_out);
    let (num, den) = ((fs_in / g) as usize, (fs_out / g) as usize);
    let reach = half.ceil() as usize + 1;
    if den <= 4096 {
        // Polyphase: output n sits at input position (n·num)/den; its
        // fractional phase (n·num mod den)/den takes only `den` values, so the
        // interpolated kernels are precomputed and applied as dot products
        // over a zero-padded copy (identical to truncating at the edges).
        let taps = 2 * reach + 1;
        let mut bank = vec![0f32; den * taps];
        for ph in 0..den {
            let frac = ph as f64 / den as f64;
            for j in 0..taps {
                // input index = floor(p) + j - reach
                let d = frac - (j as f64 - reach as f64);
                bank[ph * taps + j] = kernel(d) as f32;
            }
        }
        let mut xp = vec![0f32; reach];
        xp.extend_from_slice(x);
        xp.extend(std::iter::repeat_n(0f32, reach + 1));
        let mut out = Vec::with_capacity(out_len);
        for n in 0..out_len {
            let a = n * num;
            let (ip, ph) = (a / den, a % den);
            let seg = &xp[ip..ip + taps];
            let k = &bank[ph * taps..(ph + 1) * taps];
            let mut acc = [0f32; 8];
            let (cs, ck) = (seg.chunks_exact(8), k.chunks_exact(8));
            let tail: f32 = cs
                .remainder()
                .iter()
                .zip(ck.remainder())
                .map(|(a, b)| a * b)
                .sum();
            for (u, v) in cs.zip(ck) {
                for i in 0..8 {
                    acc[i] += u[i] * v[i];
                }
            }
            out.push(acc.iter().sum::<f32>() + tail);
        }
        return out;
    }
    let step = fi / fo;
    let mut out = Vec::with_capacity(out_len);
    let last = x.len() as i64 - 1;
    for n in 0..out_len {
        let p = n as f64 * step;
        let lo = ((p - half).ceil() as i64).max(0);
        let hi = ((p + half).floor() as i64).min(last);
        let mut acc = 0.0f64;
        let mut k = lo;
        while k <= hi {
            acc += kernel(p - k as f64) * f64::from(x[k as usize]);
            k += 1;
        }
        out.push(acc as f32);
    }
    out
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fft_columns_matches_the_direct_dft() {
        // 16 rows × 11 columns: an incomplete last group for both element sizes.
        let (rows, cols) = (16usize, 11usize);
        let x: Vec<Complex<f64>> = (0..rows * cols)
            .map(|i| Complex::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
            .collect();
        let fft = FftPlanner::<f64>::new().plan_fft_forward(rows);
        let mut got = x.clone();
        fft_columns(&mut got, rows, cols, fft.as_ref());
        let fft32 = FftPlanner::<f32>::new().plan_fft_forward(rows);
        let mut got32: Vec<Complex<f32>> = x
            .iter()
            .map(|c| Complex::new(c.re as f32, c.im as f32))
            .collect();
        fft_columns(&mut got32, rows, cols, fft32.as_ref());
        for k in 0..rows {
            for c in 0..cols {
                let want: Complex<f64> = (0..rows)
                    .map(|y| {
                        let a = -2.0 * std::f64::consts::PI * (k * y) as f64 / rows as f64;
                        x[y * cols + c] * Complex::new(a.cos(), a.sin())
                    })
                    .sum();
                assert!((got[k * cols + c] - want).norm() < 1e-9);
                let g = got32[k * cols + c];
                assert!((Complex::new(f64::from(g.re), f64::from(g.im)) - want).norm() < 1e-4);
            }
        }
    }

    #[test]
    fn box_matches_naive() {
        for (w, h, r) in [
            (13usize, 9usize, 2usize),
            (40, 11, 3),
            (5, 7, 3),
            (29, 4, 1),
            (3, 3, 2),
        ] {
            box_matches_naive_at(w, h, r);
        }
    }

    fn box_matches_naive_at(w: usize, h: usize, r: usize) {
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 11) as f32).collect();
        let fast = box_mean(&src, w, h, r);
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                let mut n = 0.0;
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                        s += src[yy * w + xx];
                        n += 1.0;
                    }
                }
                assert!(
                    (fast[y * w + x] - s / n).abs() < 1e-4,
                    "{w}x{h} r={r} at ({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn resample_keeps_tone_and_phase() {
        let fs_in = 44_100u32;
        let x: Vec<f32> = (0..44_100)
            .map(|n| (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 44_100.0).sin() as f32)
            .collect();
        let y = resample(&x, fs_in, 8000);
        assert_eq!(y.len(), 8000);
        for (n, &v) in y.iter().enumerate().take(7000).skip(1000) {
            let expect = (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 8000.0).sin();
            assert!(
                (f64::from(v) - expect).abs() < 2e-3,
                "n={n} v={v} e={expect}"
            );
        }
        let z = resample(&y, 8000, fs_in);
        assert_eq!(z.len(), 44_100);
        for n in (5000..40_000).step_by(97) {
            assert!((z[n] - x[n]).abs() < 3e-3);
        }
    }
}
