//! Detection: features at every sample offset, the weighted pilot test over
//! all block phases, local-evidence-weighted soft decoding, time ranges
//! (see the parent module).

use super::*;
use crate::code;
use crate::stats::max_of_n_sf;
use crate::{Detection, TimeRange, FALSE_POSITIVE_RATE};

mod pitch;
mod scale;

/// Frame features of `y` (8 kHz) for frames starting at `o + t·N`: per
/// frame and symbol slot `j`, the projection `Σ TMᵢ c_{jL+i} / √L` (the
/// symbol's `s` up to its keyed sign) and its reliability weight
/// `w = exp(−π²σ²/Δ²)` from the estimated noise variance σ² of the
/// projection (see below), plus frame activity. Lengths: `n_frames ×`
/// [`SYMBOLS_PER_FRAME`] (cs, rel, var), `n_frames` (active).
struct Features {
    /// Per (frame, slot): `w·cos(2π a)`, `w·sin(2π a)` with `a = proj/Δ`.
    cs: Vec<[f32; 2]>,
    /// Per (frame, slot): reliability weight `w`.
    rel: Vec<f32>,
    /// Per (frame, slot): second data weight, the mean sensitivity
    /// `E/(E + ε + floor)` of the symbol's cells.
    rel_data: Vec<f32>,
    /// Per (frame, slot): `cos 2πa`, `sin 2πa` (unweighted).
    raw: Vec<[f32; 2]>,
    /// Per (frame, slot): estimated variance of the projection caused by
    /// additive noise at the cells' floor (nepers²).
    var: Vec<f32>,
    active: Vec<bool>,
}

fn features(stft: &Stft, y: &[f32], o: usize, delta: f32) -> Features {
    let n_frames = y.len().saturating_sub(o) / N;
    let starts: Vec<usize> = (0..n_frames).map(|t| o + t * N).collect();
    features_at(stft, y, &starts, delta)
}

/// [`features`] of the frames starting at `starts` (each `start + N ≤ y.len()`)
/// for the quantiser step `delta` (Δ of the layout read).
fn features_at(stft: &Stft, y: &[f32], starts: &[usize], delta: f32) -> Features {
    let mut f = features_scaled(stft, y, starts, delta, &[1.0]);
    f.pop()
        .unwrap_or_else(|| finish_features(Vec::new(), Vec::new(), Vec::new(), delta))
}

/// [`features_at`] for each frequency-scale factor of `sigmas` (see
/// [`cells_from_cum`]), from one STFT.
fn features_scaled(
    stft: &Stft,
    y: &[f32],
    starts: &[usize],
    delta: f32,
    sigmas: &[f32],
) -> Vec<Features> {
    let n_frames = starts.len();
    let ns = sigmas.len();
    let mut proj = vec![Vec::with_capacity(n_frames * SYMBOLS_PER_FRAME); ns];
    let mut band = vec![Vec::with_capacity(n_frames); ns];
    let mut energy = vec![Vec::with_capacity(n_frames * NC); ns];
    let inv = 1.0 / (CELLS as f32).sqrt();
    let mut buf = Vec::with_capacity(N);
    let mut push = |spec: &[Complex<f32>]| {
        let cum = sigmas.iter().any(|&s| s != 1.0).then(|| cum_power(spec));
        for (i, &sigma) in sigmas.iter().enumerate() {
            let (ct, e, en) = match &cum {
                Some(c) if sigma != 1.0 => cells_from_cum(c, sigma),
                _ => cells(spec),
            };
            for j in 0..SYMBOLS_PER_FRAME {
                proj[i].push(dot(&TM, &ct[j * CELLS..(j + 1) * CELLS]) * inv);
            }
            energy[i].extend(en);
            band[i].push(e);
        }
    };
    let mut t = 0;
    while t + 1 < n_frames {
        let (s, s2) = (starts[t], starts[t + 1]);
        let [a, b] = stft.spectrum_pair(&y[s..s + N], &y[s2..s2 + N], &mut buf);
        push(&a);
        push(&b);
        t += 2;
    }
    if t < n_frames {
        let s = starts[t];
        push(&stft.spectrum(&y[s..s + N]));
    }
    proj.into_iter()
        .zip(band)
        .zip(energy)
        .map(|((p, b), e)| finish_features(p, b, e, delta))
        .collect()
}

/// Reliability weights and lattice phases of frames with projections
/// `proj`, band powers `band` and cell powers `energy` (see [`Features`]).
fn finish_features(proj: Vec<f32>, band: Vec<f64>, energy: Vec<f32>, delta: f32) -> Features {
    let n_frames = band.len();
    let active = activity(&band);
    // Noise floor per cell: a low percentile over the active frames
    // (minimum statistics, Martin 2001). Reliability of a symbol = mean over
    // its cells of E/(E + ε + floor): cells a stationary noise has buried
    // (speech pauses, weak bands under added noise) get little weight.
    let mut floor = [0f64; NC];
    for (j, fl) in floor.iter_mut().enumerate() {
        let mut v: Vec<f32> = (0..n_frames)
            .filter(|&t| active[t])
            .map(|t| energy[t * NC + j])
            .collect();
        let k = v.len() / NOISE_PERCENTILE;
        if k < v.len() {
            v.select_nth_unstable_by(k, f32::total_cmp);
            *fl = f64::from(v[k]);
        }
    }
    // Reliability of a symbol from the estimated noise in its cells: a cell
    // of power E over a noise floor n (the `NOISE_FLOOR_SCALE` × the low
    // percentile above) has noise fraction f = min(1, n/E), and `ln E` of a
    // [`TILE_BINS`]-bin cell then has variance ≈ f(2 − f)/TILE_BINS (2n/(5E)
    // for a strong cell, ψ'(5) ≈ 1/5 for noise only), scaled by the squared
    // sensitivity `E/(E+ε)` of the feature. σ² of the projection (unit
    // direction) is the mean over the symbol's cells, the soft value's
    // expected amplitude falls as exp(−2π²σ²/Δ²) (wrapped Gaussian phase), and
    // the weight is its square root `exp(−π²σ²/Δ²)` (measured on the harness:
    // better than the amplitude itself when the model misses codec noise).
    let mut rel = Vec::with_capacity(n_frames * SYMBOLS_PER_FRAME);
    let mut var = Vec::with_capacity(n_frames * SYMBOLS_PER_FRAME);
    let mut rel_data = Vec::with_capacity(n_frames * SYMBOLS_PER_FRAME);
    let k_w = -(std::f64::consts::PI / f64::from(delta)).powi(2);
    for t in 0..n_frames {
        let e = &energy[t * NC..(t + 1) * NC];
        let eps = f64::from(EPS_REL) * e.iter().map(|&v| f64::from(v)).sum::<f64>() / NC as f64;
        for j in 0..SYMBOLS_PER_FRAME {
            let v: f64 = (j * CELLS..(j + 1) * CELLS)
                .map(|k| {
                    let v = f64::from(e[k]);
                    let sens = v / (v + eps + 1e-30);
                    let fr = (NOISE_FLOOR_SCALE * floor[k] / (v + 1e-30)).min(1.0);
                    sens * sens * fr * (2.0 - fr) / TILE_BINS as f64
                })
                .sum::<f64>()
                / CELLS as f64;
            var.push(v as f32);
            rel.push((k_w * v).exp() as f32);
            // The previous reliability (v3 before the noise model): mean
            // sensitivity E/(E + ε + floor); the plain Viterbi decoder's second
            // try (off with the list decoder, `SECOND_TRY`).
            let r: f64 = (j * CELLS..(j + 1) * CELLS)
                .map(|k| {
                    let v = f64::from(e[k]);
                    v / (v + eps + floor[k] + 1e-30)
                })
                .sum::<f64>()
                / CELLS as f64;
            rel_data.push(r as f32);
        }
    }
    let raw: Vec<[f32; 2]> = proj
        .iter()
        .map(|&p| {
            let (sn, cn) = (std::f32::consts::TAU * p / delta).sin_cos();
            [cn, sn]
        })
        .collect();
    let cs = raw
        .iter()
        .zip(&rel)
        .map(|(&[c, s], &w)| [w * c, w * s])
        .collect();
    Features {
        cs,
        rel,
        rel_data,
        raw,
        var,
        active,
    }
}

impl Features {
    /// (soft value cos(2π(s/Δ − d)) at lattice offset `off`, weight) of
    /// symbol `q` read from frame `t`.
    /// Returns (w·cos, w): `cos(2π(f·a − off)) = cos 2πa · cos 2π·off + f · sin 2πa · sin 2π·off`.
    fn soft(&self, layout: &Layout, t: usize, q: usize, off: f32) -> (f64, f64) {
        let k = t * SYMBOLS_PER_FRAME + q % SYMBOLS_PER_FRAME;
        let (so, co) = (std::f32::consts::TAU * off).sin_cos();
        let [c, s] = self.cs[k];
        (
            f64::from(c * co + layout.flip[q] * s * so),
            f64::from(self.rel[k]),
        )
    }
}

impl Features {
    /// Data soft value `w_d · cos(2π(s/Δ − d))` of symbol `q` read from frame
    /// `t` at lattice offset `off`, with the second data weight `w_d`.
    fn soft_data(&self, layout: &Layout, t: usize, q: usize, off: f32) -> f64 {
        let k = t * SYMBOLS_PER_FRAME + q % SYMBOLS_PER_FRAME;
        let (so, co) = (std::f32::consts::TAU * off).sin_cos();
        let [c, s] = self.raw[k];
        f64::from(self.rel_data[k] * (c * co + layout.flip[q] * s * so))
    }
}

/// Pilot statistic at every block phase θ (frame t has block index (t+θ) mod B):
/// returns (T, 2·Σ_q A_q²) per θ, where `A_q = Σ_reps w·cos(2π(s/Δ − d))`
/// sums pilot `q`'s soft values over every repetition of the block and
/// `T = Σ_q A_q`, so `z = T/√(Σ A_q²)` ([`z_of`]) is self-normalised.
/// Unmarked input gives independent, symmetric `A_q` (keyed dither), so `z`
/// is ≈ N(0,1). Marked input read with a *wrong* key also gives symmetric
/// `A_q` across `q`, but the phase of a block position is the same in every
/// repetition (the true key's lattice repeats), so the repetitions add
/// coherently: dividing by `√(Σ w²/2)` (the independent-symbol variance,
/// used until this version) gave a wrong key on a 30 s marked clip p ≈ 1e-10;
/// the self-normalised `z` stays calibrated there.
fn pilot_scan(f: &Features, layout: &Layout) -> Vec<(f64, f64)> {
    pilot_scan_frames(all_frames(f), &Pilots::new(layout))
}

/// The pilot symbols of a block: (block frame φ, slot j, `cos 2πd`,
/// `± sin 2πd`) per pilot, so a block phase costs one pass over the 132
/// pilots instead of all 312 symbols.
struct Pilots(Vec<(usize, usize, f64, f64)>);

impl Pilots {
    fn new(layout: &Layout) -> Self {
        Self(
            (0..N_SYM)
                .filter(|&q| layout.role[q] == PILOT)
                .map(|q| {
                    (
                        q / SYMBOLS_PER_FRAME,
                        q % SYMBOLS_PER_FRAME,
                        f64::from(layout.pc[q]),
                        f64::from(layout.ps[q]),
                    )
                })
                .collect(),
        )
    }
}

/// [`pilot_scan`] over an arbitrary frame sequence: `frames` yields
/// (frame index t of the hypothesis, features, frame of those features read
/// there); frame `t` has block index `(t + θ) mod B`.
fn pilot_scan_frames<'a>(
    frames: impl Iterator<Item = (usize, &'a Features, usize)>,
    pilots: &Pilots,
) -> Vec<(f64, f64)> {
    // Sums of w·cos 2πa, w·sin 2πa over the repetitions, per residue
    // ρ = t mod B and slot j, stored twice (ρ and ρ + B) so that the block
    // index φ = ρ + θ reads residue φ − θ + B without a modulo.
    const S: usize = SYMBOLS_PER_FRAME;
    let mut acc = vec![[0f64; 2]; 2 * BLOCK_FRAMES * S];
    for (t, f, src) in frames {
        if !f.active[src] {
            continue;
        }
        let rho = t % BLOCK_FRAMES;
        for j in 0..S {
            let [c, s] = f.cs[src * S + j];
            let a = &mut acc[rho * S + j];
            a[0] += f64::from(c);
            a[1] += f64::from(s);
        }
    }
    scan_acc(acc, pilots)
}

/// Every frame of `f` in order (the unstretched hypothesis).
fn all_frames(f: &Features) -> impl Iterator<Item = (usize, &Features, usize)> {
    (0..f.active.len()).map(move |t| (t, f, t))
}

/// The block phase with the largest `z` of a scan, and that `z`.
fn best_phase(scan: &[(f64, f64)]) -> (usize, f64) {
    scan.iter()
        .enumerate()
        .map(|(th, &(t, n))| (th, z_of(t, n)))
        .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a })
}

/// (T, 2·Σ A²) per block phase from the per-residue sums `acc` (first half
/// filled; see [`pilot_scan_frames`]).
fn scan_acc(mut acc: Vec<[f64; 2]>, pilots: &Pilots) -> Vec<(f64, f64)> {
    const S: usize = SYMBOLS_PER_FRAME;
    let (lo, hi) = acc.split_at_mut(BLOCK_FRAMES * S);
    hi.copy_from_slice(lo);
    (0..BLOCK_FRAMES)
        .map(|theta| {
            let (mut t_sum, mut n) = (0f64, 0f64);
            for &(phi, j, pc, ps) in &pilots.0 {
                let [c, s] = acc[(phi + BLOCK_FRAMES - theta) * S + j];
                let a = c * pc + s * ps;
                t_sum += a;
                n += 2.0 * a * a;
            }
            (t_sum, n)
        })
        .collect()
}

fn z_of(t: f64, n: f64) -> f64 {
    if n <= 1e-12 {
        0.0
    } else {
        t / (n / 2.0).sqrt()
    }
}

/// Detect the mark in `channels[c][n]` at `sample_rate` Hz. Never panics.
/// Clips shorter than [`DETECT_MIN_SECONDS`] give `too_small = true`; unsupported
/// sample rates give `p_value = 1`, not detected.
pub fn detect(channels: &[Vec<f32>], sample_rate: u32, key: &WatermarkKey) -> Detection {
    detect_soft(channels, sample_rate, key).0
}

/// Evaluation hook (harnesses, not the API): the detection plus the fraction
/// of the coded bits whose summed soft value at the best hypothesis has the
/// sign of `truth`'s codeword (raw channel bit accuracy, before the Viterbi
/// decoder). `None` when nothing was decoded (too short, bad rate).
#[doc(hidden)]
pub fn detect_eval(
    channels: &[Vec<f32>],
    sample_rate: u32,
    key: &WatermarkKey,
    truth: u64,
) -> (Detection, Option<f64>) {
    let (det, acc, _) = detect_eval_soft(channels, sample_rate, key, truth);
    (det, acc)
}

/// [`detect_eval`] plus the data soft values (for offline decoder
/// experiments).
#[doc(hidden)]
pub fn detect_eval_soft(
    channels: &[Vec<f32>],
    sample_rate: u32,
    key: &WatermarkKey,
    truth: u64,
) -> (Detection, Option<f64>, Option<DataSoft>) {
    let (det, soft) = detect_soft(channels, sample_rate, key);
    let acc = soft.as_ref().map(|s| {
        let used = if s.second {
            &s.sensitivity
        } else {
            &s.noise_model
        };
        CODE.raw_accuracy(used, truth)
    });
    (det, acc, soft)
}

/// Diagnostics hook (harness only): log-powers `ln E` of the 16 cells of
/// every frame at offset 0 (8 kHz analysis), and each frame's cell-power
/// mean.
#[doc(hidden)]
pub fn cell_log_powers(channels: &[Vec<f32>], sample_rate: u32) -> Vec<[f32; 17]> {
    if check_rate(sample_rate).is_err() || channels.is_empty() {
        return Vec::new();
    }
    let y = mono_8k_zc(channels, sample_rate, DETECT_ZC);
    let stft = Stft::new();
    (0..y.len() / N)
        .map(|t| {
            let (_, band, e) = cells(&stft.spectrum(&y[t * N..(t + 1) * N]));
            let mut o = [0f32; 17];
            for (a, &v) in o.iter_mut().zip(&e) {
                *a = (v + 1e-20).ln();
            }
            o[16] = (band / NC as f64 + 1e-20).ln() as f32;
            o
        })
        .collect()
}

/// Diagnostics hook (harness only): per symbol at the best hypothesis,
/// (reliability w, estimated noise variance of the projection, soft value
/// with the true bit, is pilot).
#[doc(hidden)]
pub fn detect_diag(
    channels: &[Vec<f32>],
    sample_rate: u32,
    key: &WatermarkKey,
    truth: u64,
) -> Vec<(f32, f32, f32, bool)> {
    if check_rate(sample_rate).is_err() || channels.is_empty() {
        return Vec::new();
    }
    let y = mono_8k_zc(channels, sample_rate, DETECT_ZC);
    let layout = Layout::new(key, &V5);
    let stft = Stft::new();
    let coded = CODE.encode(truth);
    let mut best = (f64::NEG_INFINITY, 0usize, 0usize);
    for k in 0..N_OFFSETS {
        let f = features(&stft, &y, k * OFFSET_STEP, layout.delta);
        for (th, &(t, n)) in pilot_scan(&f, &layout).iter().enumerate() {
            let z = z_of(t, n);
            if z > best.0 {
                best = (z, k, th);
            }
        }
    }
    let (_, bk, theta) = best;
    let f = features(&stft, &y, bk * OFFSET_STEP, layout.delta);
    let mut out = Vec::new();
    for t in 0..f.active.len() {
        if !f.active[t] {
            continue;
        }
        let phi = (t + theta) % BLOCK_FRAMES;
        for j in 0..SYMBOLS_PER_FRAME {
            let q = phi * SYMBOLS_PER_FRAME + j;
            let bit = layout.bit(q, &coded);
            let k = t * SYMBOLS_PER_FRAME + j;
            let (v, w) = f.soft(&layout, t, q, layout.offset(q, bit));
            let c = if w > 1e-9 { v / w } else { 0.0 };
            out.push((f.rel[k], f.var[k], c as f32, layout.role[q] == PILOT));
        }
    }
    out
}

fn detect_soft(
    channels: &[Vec<f32>],
    sample_rate: u32,
    key: &WatermarkKey,
) -> (Detection, Option<DataSoft>) {
    let not_found = Detection {
        too_small: false,
        ..Detection::too_small()
    };
    if check_rate(sample_rate).is_err() || channels.is_empty() {
        return (not_found, None);
    }
    let len = channels.iter().map(Vec::len).min().unwrap_or(0);
    if (len as f64 / f64::from(sample_rate)) < DETECT_MIN_SECONDS {
        return (Detection::too_small(), None);
    }
    let dur = len as f64 / f64::from(sample_rate);
    let y = mono_8k_zc(channels, sample_rate, DETECT_ZC);
    // Every layout in turn (newest first); the stage p-values carry the
    // Bonferroni factor for their number (`stage_p_value`), so the smallest
    // over the layouts is a p-value. A detection under the first layout is
    // returned without reading the others (its p-value is then ≥ the
    // minimum over all, so still valid).
    let mut best: Option<(Detection, Option<DataSoft>)> = None;
    for scheme in &SCHEMES {
        let r = detect_layout(&y, dur, key, scheme);
        if r.0.detected {
            return r;
        }
        if best.as_ref().is_none_or(|b| r.0.p_value < b.0.p_value) {
            best = Some(r);
        }
    }
    best.unwrap_or((not_found, None))
}

/// [`detect_soft`] under one layout `scheme`, on the 8 kHz mono mix `y` of a
/// clip of `dur` seconds.
fn detect_layout(
    y: &[f32],
    dur: f64,
    key: &WatermarkKey,
    scheme: &Scheme,
) -> (Detection, Option<DataSoft>) {
    let not_found = Detection {
        too_small: false,
        ..Detection::too_small()
    };
    let layout = Layout::new(key, scheme);
    let delta = layout.delta;
    let pilots = Pilots::new(&layout);
    let stft = Stft::new();
    // Stage 0, unstretched. Coarse to fine: every other offset (2 ms
    // steps), then the two neighbours of the best. The statistic is the
    // maximum over the hypotheses evaluated, a subset of the full grid of
    // N_HYP, so the Šidák correction for N_HYP stays valid (conservative).
    // The coarse features are kept: together they are the 2 ms grid the
    // speed search (stage 1) reads.
    let grid: Vec<Features> = (0..N_OFFSETS)
        .step_by(2)
        .map(|k| features(&stft, y, k * OFFSET_STEP, delta))
        .collect();
    let mut best: Option<(f64, usize, usize)> = None;
    for (i, f) in grid.iter().enumerate() {
        let (theta, z) = best_phase(&pilot_scan_frames(all_frames(f), &pilots));
        if best.is_none_or(|b| z > b.0) {
            best = Some((z, 2 * i, theta));
        }
    }
    let Some((mut z0, k0, mut theta0)) = best else {
        return (not_found, None);
    };
    let mut k_best = k0;
    let mut fine: Option<Features> = None;
    for k in [(k0 + 1) % N_OFFSETS, (k0 + N_OFFSETS - 1) % N_OFFSETS] {
        let f = features(&stft, y, k * OFFSET_STEP, delta);
        let (theta, z) = best_phase(&pilot_scan_frames(all_frames(&f), &pilots));
        if z > z0 {
            (z0, k_best, theta0) = (z, k, theta);
            fine = Some(f);
        }
    }
    let f0 = fine.as_ref().unwrap_or(&grid[k0 / 2]);
    let z0 = if z0.is_finite() { z0 } else { 0.0 };
    // Two stages, each tested at half the false-positive budget
    // (Bonferroni); within a stage, the pilots' Šidák p-value is combined
    // with the CRC check of the decoded payload (see [`stage_p_value`]).
    let p0 = max_of_n_sf(z0, N_HYP);
    let timing0 = FrameTiming {
        start_s: (k_best * OFFSET_STEP) as f64 / f64::from(FS),
        frame_s: N as f64 / f64::from(FS),
        scale: None,
    };
    let stage0 = decode_hypothesis(f0, &layout, theta0, p0, z0, timing0, dur);
    if stage0.0.detected {
        return stage0;
    }
    // Stage 1, speed search (time stretch, pitch kept).
    let s01 = 'speed: {
        let Some(h) = stretch_search(&grid, &pilots) else {
            break 'speed stage0;
        };
        // Fine: the best factor's frames at their exact sample positions, at
        // the best offset and ±1 ms (part of the family counted in STRETCH_HYP).
        let mut fine1: Option<(f64, f64, usize, Features)> = None;
        for d in [0.0, -0.5, 0.5] {
            let o = h.offset + d;
            let o = if o < 0.0 { o + h.step } else { o };
            let starts = stretched_starts(y.len(), o, h.step);
            let f = features_at(&stft, y, &starts, delta);
            let (theta, z) = best_phase(&pilot_scan_frames(all_frames(&f), &pilots));
            if fine1.as_ref().is_none_or(|b| z > b.0) {
                fine1 = Some((z, o, theta, f));
            }
        }
        let (z1, o1, theta1, f1) = match fine1 {
            Some((z, o, theta, f)) if z > h.z => (z, o, theta, f),
            _ => {
                let idx = stretched_frames(&grid, h.offset, h.step);
                (h.z, h.offset, h.theta, Features::gather(&grid, &idx))
            }
        };
        let z1 = if z1.is_finite() { z1 } else { 0.0 };
        let p1 = max_of_n_sf(z1, STRETCH_HYP);
        let p1_at_best = stage_p_value(p1, true);
        if p1_at_best >= FALSE_POSITIVE_RATE && p1_at_best >= stage0.0.p_value {
            // Stage 1 can neither detect nor be the reported hypothesis even if
            // its payload decoded: skip its decode (the common case on unmarked
            // audio; reporting stage 0's p-value alone is conservative).
            break 'speed stage0;
        }
        let g_s = (2 * OFFSET_STEP) as f64 / f64::from(FS);
        let timing1 = FrameTiming {
            start_s: o1 * g_s,
            frame_s: h.step * g_s,
            scale: Some(h.step / GRID_PER_FRAME as f64),
        };
        let stage1 = decode_hypothesis(&f1, &layout, theta1, p1, z1, timing1, dur);
        if stage1.0.detected || stage1.0.p_value < stage0.0.p_value {
            stage1
        } else {
            stage0
        }
    };
    if s01.0.detected {
        return s01;
    }
    // Stage 2, pitch search (frequency scale, duration kept).
    let s012 = match pitch::search(y, dur, &layout, &pilots, &stft, s01.0.p_value) {
        Some(s2) if s2.0.detected || s2.0.p_value < s01.0.p_value => s2,
        _ => s01,
    };
    if s012.0.detected {
        return s012;
    }
    // Stage 3, tempo and speed search within one block.
    match scale::search(y, dur, &layout, &pilots, &stft, s012.0.p_value) {
        Some(s3) if s3.0.detected || s3.0.p_value < s012.0.p_value => s3,
        _ => s012,
    }
}

/// The best hypothesis of a search stage: its features, block phase and
/// pilot score `z`.
struct Best<'a> {
    f: &'a Features,
    theta: usize,
    z: f64,
}

/// The decision of a search stage (2 or 3) at its best hypothesis `best`,
/// its pilots' p-value the Šidák correction for `n_hyp` hypotheses: `None`
/// when even a CRC match could neither detect nor beat `p_before` (the
/// earlier stages' p-value), so the payload is not decoded.
fn decide_stage(
    best: Best<'_>,
    layout: &Layout,
    n_hyp: usize,
    p_before: f64,
    timing: FrameTiming,
    dur: f64,
) -> Option<(Detection, Option<DataSoft>)> {
    let z = if best.z.is_finite() { best.z } else { 0.0 };
    let p = max_of_n_sf(z, n_hyp);
    let at_best = stage_p_value(p, true);
    if at_best >= FALSE_POSITIVE_RATE && at_best >= p_before {
        return None;
    }
    Some(decode_hypothesis(
        best.f, layout, best.theta, p, z, timing, dur,
    ))
}

/// Probability bound that the list decoder returns a payload whose CRC
/// checks when the data soft values carry no mark: `LIST` × 2⁻¹⁶.
///
/// Under H0 (unmarked audio, or a mark under another key) the data symbols'
/// lattice phases are independent and uniform given the audio and the pilot
/// dithers (each data symbol has its own keyed dither, and `d ↦ d + ½`
/// flips a soft value's sign without changing its magnitude), so the signs
/// of the summed soft values are fair coins independent of their
/// magnitudes and of everything the pilots decided (hypothesis, local
/// weights). The code is linear, so the list for signs flipped along a
/// codeword is the list translated by it: every listed path is uniform over
/// the 2⁴⁸ information words, and passes the 16-bit CRC with probability
/// exactly 2⁻¹⁶; the union over the list gives the bound (twice the list
/// when the second soft-value set is decoded too, `SECOND_TRY`). Measured
/// on 20 000 garbage codewords with the harness's soft-value magnitudes
/// (`examples/audio_list_eval.rs`): 6 matches with `L = 16` (Poisson mean
/// 4.9 at the bound).
pub(crate) const CRC_FALSE_MATCH: f64 = (LIST * if SECOND_TRY { 2 } else { 1 }) as f64 / 65536.0;

/// Reported p-value of one stage from the pilots' Šidák p-value `p_pilots`
/// and whether the stage's payload decoded with a valid CRC:
/// `min(1, 2·4·2ρ·p_pilots)` with a CRC match (ρ = [`CRC_FALSE_MATCH`]),
/// `min(1, 2·4·2·p_pilots)` without.
///
/// Validity (H0: unmarked or another key): `P(p_pilots ≤ x) ≤ x` and the
/// CRC match is independent of the pilots with probability ≤ ρ (see
/// [`CRC_FALSE_MATCH`]), so `q = 2ρ·p_pilots` (CRC) or `2·p_pilots` (no CRC)
/// has `P(q ≤ a) ≤ ρ · a/(2ρ) + a/2 = a`: a p-value. The [`STAGES`] (4)
/// searches of each of the [`SCHEMES`] (2 layouts) are combined by Bonferroni
/// (the reported `min(1, 2·4·q)`, the smallest over the stages and layouts
/// tried). A detection needs the reported value below
/// [`FALSE_POSITIVE_RATE`] *and* the CRC, so the pilots alone need only
/// `p_pilots < 1e-6 / (16ρ)` ≈ 2.6e-4 (pilot `z` ≳ 5.3 at stage 0; ≳ 6.6 if
/// the CRC were not counted): the CRC check a detection always required
/// also counts as evidence. (Before issue 19: one layout, 2 stages,
/// `min(1, 4ρ·p_pilots)`.)
fn stage_p_value(p_pilots: f64, crc: bool) -> f64 {
    let q = 2.0 * p_pilots * if crc { CRC_FALSE_MATCH } else { 1.0 };
    ((SCHEMES.len() * STAGES) as f64 * q).min(1.0)
}

/// The p-value the detector reports for a decoded mark (CRC match) whose
/// pilots' Šidák p-value is `p_pilots`: the CRC and the correction for the
/// layouts and searches tried counted ([`stage_p_value`]; 16ρ·`p_pilots`,
/// ρ = 16 × 2⁻¹⁶). For callers that keep a margin in pilot strength (the
/// service's sign path).
pub fn decoded_p_value(p_pilots: f64) -> f64 {
    stage_p_value(p_pilots, true)
}

/// Searches per layout, each tested at its own Šidák p-value: 0 unstretched,
/// 1 speed (time stretch from the block repetition), 2 pitch (frequency
/// scale, [`pitch`]), 3 tempo / speed within one block ([`scale`]).
const STAGES: usize = 4;

/// Where frame `t` of a hypothesis lies: `start_s + t·frame_s` seconds, and
/// the time-scale factor reported (`None` unstretched).
#[derive(Clone, Copy)]
struct FrameTiming {
    start_s: f64,
    frame_s: f64,
    scale: Option<f64>,
}

/// Local-evidence-weighted soft decoding of the data symbols at block phase
/// `theta` of the frames `f`, the decision at the stage p-value
/// ([`stage_p_value`] of the pilots' Šidák p-value `p_pilots`), and the time ranges.
fn decode_hypothesis(
    f: &Features,
    layout: &Layout,
    theta: usize,
    p_pilots: f64,
    score: f64,
    timing: FrameTiming,
    dur: f64,
) -> (Detection, Option<DataSoft>) {
    let local = local_evidence(f, layout, theta);
    // Two soft-value sets: weighted by the noise model (`w²`; the pilots use `w`)
    // and by the tile sensitivity `w_d` (the decoder's second try before the
    // list decoder; now off, `SECOND_TRY`, kept for the evaluation hook).
    // The first is list-Viterbi decoded (`LIST` paths, the CRC selecting);
    // a detection needs the stage p-value (pilots and CRC, `stage_p_value`)
    // below 1e-6 and a CRC match (false CRC match ≤ LIST × 2⁻¹⁶ given a
    // garbage codeword). Data weight `w²`, the soft value's expected
    // amplitude under the noise model — the log-likelihood-ratio weight of a
    // weak signal (LLR ∝ amplitude / variance, variance ≈ ½) — where the
    // pilots use its square root (better for the pilot test when the model
    // misses codec noise). Harness (64 clips, γ = −0.25, CRC counted): `w²`
    // against `w` on the data: white 60 → 61, pink 61 → 62 of 64, every
    // other attack the same; `w³`: the same as `w²`; `w^0.5`: white 54.
    let mut soft_a = vec![0f64; CODE.n_out];
    let mut soft_b = vec![0f64; CODE.n_out];
    for (t, &lw) in local.iter().enumerate() {
        if !f.active[t] || lw <= 0.0 {
            continue;
        }
        let phi = (t + theta) % BLOCK_FRAMES;
        for j in 0..SYMBOLS_PER_FRAME {
            let q = phi * SYMBOLS_PER_FRAME + j;
            let r = layout.role[q];
            if r != PILOT {
                // `w·cos` times `w` again: the data weight is the soft value's
                // expected amplitude `w² = exp(−2π²σ²/Δ²)` (see above).
                let (v, w) = f.soft(layout, t, q, layout.dither[q]);
                soft_a[r as usize] += lw * v * w;
                soft_b[r as usize] += lw * f.soft_data(layout, t, q, layout.dither[q]);
            }
        }
    }
    let (dec, second) = decode_data(&soft_a, SECOND_TRY.then_some(soft_b.as_slice()), LIST);
    let p_value = stage_p_value(p_pilots, dec.payload.is_some());
    let mut det = Detection::decide(&dec, p_value, score, |pl| {
        find_ranges(f, layout, pl, theta, timing, dur)
    });
    det.scale = timing.scale.filter(|_| det.detected);
    (
        det,
        Some(DataSoft {
            p_value: stage_p_value(p_pilots, false),
            noise_model: soft_a,
            sensitivity: soft_b,
            second,
        }),
    )
}

/// Grid points per frame of the speed search's grid (2 ms steps: the
/// stage-0 coarse offsets).
const GRID_PER_FRAME: usize = N_OFFSETS / 2;
/// Speed factors searched by stage 1: tempo changes (pitch kept) from
/// `STRETCH_MIN` to `STRETCH_MAX` (attacked duration = original / factor).
const STRETCH_MIN: f64 = 0.90;
const STRETCH_MAX: f64 = 1.10;
/// Autocorrelation peaks kept, and factors tried around each (relative
/// spacing [`STRETCH_STEP`]).
const STRETCH_PEAKS: usize = 8;
const STRETCH_STEP: f64 = 2e-4;
const STRETCH_PER_PEAK: usize = 3;
/// Stage 1's hypotheses for the Šidák correction: factors × 1 ms offsets
/// within the longest stretched frame (32 ms / 0.9) × block phases × 2 ways
/// of reading a frame (nearest 2 ms grid point, exact sample position). The
/// search evaluates a subset (the grid read at 2 ms offsets for every
/// factor, the exact read at the best offset and ±1 ms), so the correction
/// for the whole family is conservative.
const STRETCH_HYP: usize =
    2 * STRETCH_PEAKS * STRETCH_PER_PEAK * (2 * GRID_PER_FRAME * 10).div_ceil(9) * BLOCK_FRAMES;
/// Shortest overlap of the clip with itself shifted by one block for a lag
/// to count (frames, ≈ 1 s).
const MIN_OVERLAP_FRAMES: usize = 31;

/// The best stretched hypothesis: frame `t` starts at grid position
/// `offset + t·step` (grid units of 2 ms; `step` = 16 / speed factor) and has
/// block index `(t + theta) mod B`.
struct Stretched {
    z: f64,
    offset: f64,
    step: f64,
    theta: usize,
    /// Speed factor of the hypothesis (`16 / step`).
    factor: f64,
}

/// Number of valid points of the 2 ms grid of `grid` (grid point
/// `g = 16 t + k` is frame `t` of `grid[k]`; the valid points are a prefix).
fn grid_len(grid: &[Features]) -> usize {
    grid.iter().map(|f| f.active.len()).sum()
}

/// Stage 1, speed search. A time stretch (tempo change with pitch kept, e.g.
/// WSOLA; Verhelst & Roelands 1993) maps the block grid linearly:
/// original frame `u` is near `u·N/r` for speed factor `r`. The block
/// repeats with the same codeword, so every symbol's lattice phase `a = s/Δ`
/// (the projection *before* the keyed sign and dither) is the same in every
/// repetition: the key-free autocorrelation `C(ℓ) = Σ_g Re(z_g z*_{g+ℓ})` of
/// the grid features `z = w·e^{2πia}` peaks at the lag of one stretched block,
/// `ℓ = B·16/r` grid points. The [`STRETCH_PEAKS`] highest peaks of the
/// normalised `C(ℓ)/√(Σ|z_g|²|z_{g+ℓ}|²)` over lags for factors in
/// [`STRETCH_MIN`, `STRETCH_MAX`] (parabolic interpolation) give
/// [`STRETCH_PER_PEAK`] candidate factors each, and the keyed pilot test runs
/// on each factor's frames read from the nearest grid points, at every
/// offset (2 ms) and block phase. The selection uses no key, so under the
/// null (unmarked audio, or marked under another key: the self-normalised
/// `z`) the keyed statistic at the selected factors has the same
/// distribution as at any fixed factors, and the Šidák correction for the
/// [`STRETCH_HYP`] hypotheses holds. `None` when the clip holds no two
/// overlapping blocks (≲ 5.6 s after the stretch).
fn stretch_search(grid: &[Features], pilots: &Pilots) -> Option<Stretched> {
    const S: usize = SYMBOLS_PER_FRAME;
    let n = grid_len(grid);
    let block = (BLOCK_FRAMES * GRID_PER_FRAME) as f64;
    let lag_lo = (block / STRETCH_MAX).floor() as usize - 1;
    let lag_hi = (block / STRETCH_MIN).ceil() as usize + 1;
    if n < lag_lo + MIN_OVERLAP_FRAMES * GRID_PER_FRAME {
        return None;
    }
    // Structure of arrays per slot: c, s and |z|² on the grid (0 where the
    // frame is inactive).
    let mut c = vec![vec![0f32; n]; S];
    let mut sn = vec![vec![0f32; n]; S];
    let mut m = vec![vec![0f32; n]; S];
    for g in 0..n {
        let f = &grid[g % GRID_PER_FRAME];
        let t = g / GRID_PER_FRAME;
        if !f.active[t] {
            continue;
        }
        for j in 0..S {
            let [a, b] = f.cs[t * S + j];
            c[j][g] = a;
            sn[j][g] = b;
            m[j][g] = a * a + b * b;
        }
    }
    let mut score = Vec::with_capacity(lag_hi - lag_lo + 1);
    for lag in lag_lo..=lag_hi {
        if lag + MIN_OVERLAP_FRAMES * GRID_PER_FRAME > n {
            score.push(f64::NEG_INFINITY);
            continue;
        }
        let k = n - lag;
        let (mut num, mut den) = (0f64, 0f64);
        for j in 0..S {
            num += f64::from(dot(&c[j][..k], &c[j][lag..]) + dot(&sn[j][..k], &sn[j][lag..]));
            den += f64::from(dot(&m[j][..k], &m[j][lag..]));
        }
        score.push(if den > 1e-12 { num / den.sqrt() } else { 0.0 });
    }
    // Local maxima, highest first.
    let mut peaks: Vec<(f64, usize)> = (0..score.len())
        .filter(|&i| {
            score[i].is_finite()
                && (i == 0 || score[i] >= score[i - 1])
                && (i + 1 == score.len() || score[i] > score[i + 1])
        })
        .map(|i| (score[i], i))
        .collect();
    peaks.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Coarse to fine: each peak's factor at every offset, then the
    // neighbouring factors of the best peak.
    let eval = |r: f64, best: &mut Option<Stretched>| {
        let step = GRID_PER_FRAME as f64 / r;
        for o in 0..step.ceil() as usize {
            let idx = stretched_frames(grid, o as f64, step);
            let frames = idx.iter().enumerate().map(|(t, &(k, u))| (t, k, u));
            let (theta, z) = stretched_scan(grid, frames, pilots);
            if best.as_ref().is_none_or(|b| z > b.z) {
                *best = Some(Stretched {
                    z,
                    offset: o as f64,
                    step,
                    theta,
                    factor: r,
                });
            }
        }
    };
    let mut best: Option<Stretched> = None;
    for &(_, i) in peaks.iter().take(STRETCH_PEAKS) {
        let delta = match (score.get(i.wrapping_sub(1)), score.get(i + 1)) {
            (Some(&a), Some(&b)) if a.is_finite() && b.is_finite() => {
                let d = a - 2.0 * score[i] + b;
                if d < -1e-12 {
                    (0.5 * (a - b) / d).clamp(-0.5, 0.5)
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        eval(block / ((lag_lo + i) as f64 + delta), &mut best);
    }
    let r0 = best.as_ref()?.factor;
    for c in 1..=STRETCH_PER_PEAK / 2 {
        let d = STRETCH_STEP * c as f64;
        eval(r0 * (1.0 - d), &mut best);
        eval(r0 * (1.0 + d), &mut best);
    }
    best
}

/// Best (θ, z) of the pilot test over frames read from several grids:
/// (frame index t, grid k, frame u of `grid[k]`).
fn stretched_scan(
    grid: &[Features],
    frames: impl Iterator<Item = (usize, usize, usize)>,
    pilots: &Pilots,
) -> (usize, f64) {
    let frames = frames.map(|(t, k, u)| (t, &grid[k], u));
    best_phase(&pilot_scan_frames(frames, pilots))
}

/// Exact sample starts (8 kHz) of a stretched hypothesis's frames: frame `t`
/// at `round(16·(offset + t·step))`, while the frame fits in `len` samples
/// (a negative offset skips the frames before 0).
fn stretched_starts(len: usize, offset: f64, step: f64) -> Vec<usize> {
    let g = (2 * OFFSET_STEP) as f64;
    let mut out = Vec::with_capacity((len as f64 / (g * step)) as usize + 1);
    for t in 0usize.. {
        let s = (g * (offset + t as f64 * step)).round();
        if s < 0.0 {
            continue;
        }
        let s = s as usize;
        if s + N > len {
            break;
        }
        out.push(s);
    }
    out
}

/// Frames of a stretched hypothesis read from the nearest grid points:
/// frame `t` at grid position `offset + t·step` is frame `g / 16` of
/// `grid[g % 16]`, `g = round(offset + t·step)`; up to the end of the grid.
fn stretched_frames(grid: &[Features], offset: f64, step: f64) -> Vec<(usize, usize)> {
    let n = grid_len(grid);
    let mut out = Vec::with_capacity((n as f64 / step) as usize + 1);
    for t in 0usize.. {
        let g = (offset + t as f64 * step).round() as usize;
        if g >= n {
            break;
        }
        out.push((g % GRID_PER_FRAME, g / GRID_PER_FRAME));
    }
    out
}

impl Features {
    /// The features of frames read from several grids (`idx`: grid k, frame u).
    fn gather(grid: &[Features], idx: &[(usize, usize)]) -> Features {
        const S: usize = SYMBOLS_PER_FRAME;
        let mut out = Features {
            cs: Vec::with_capacity(idx.len() * S),
            rel: Vec::with_capacity(idx.len() * S),
            rel_data: Vec::with_capacity(idx.len() * S),
            raw: Vec::with_capacity(idx.len() * S),
            var: Vec::with_capacity(idx.len() * S),
            active: Vec::with_capacity(idx.len()),
        };
        for &(k, u) in idx {
            let f = &grid[k];
            let r = u * S..(u + 1) * S;
            out.cs.extend_from_slice(&f.cs[r.clone()]);
            out.rel.extend_from_slice(&f.rel[r.clone()]);
            out.rel_data.extend_from_slice(&f.rel_data[r.clone()]);
            out.raw.extend_from_slice(&f.raw[r.clone()]);
            out.var.extend_from_slice(&f.var[r]);
            out.active.push(f.active[u]);
        }
        out
    }
}

/// List size of the audio decoder (list Viterbi with the CRC as the
/// selector, Seshadri & Sundberg 1994). A failed decode becomes a wrong
/// payload with probability ≲ `LIST` × 2⁻¹⁶ ≈ 2.4e-4 per soft-value set
/// tried, behind the pilots' p < 1e-6. On the audio harness's 64 clips under
/// MP3 64k, AAC 64k, Opus 32k, white / pink noise at 20 dB (320 attacked
/// clips, 286 with the pilots' p < 1e-6), `examples/audio_list_eval.rs`:
/// 248 decoded with plain Viterbi and the second try, 268 / 271 / 273 / 274 /
/// 278 with lists of 8 / 16 / 32 / 64 / 256; each doubling past 16 gains ≈ 1
/// clip in 320 and doubles the wrong-payload bound.
pub(crate) const LIST: usize = 16;

/// Whether the sensitivity-weighted soft values are list-decoded when the
/// first set fails (the second try of the plain Viterbi decoder). Off: with
/// `LIST` = 16 it decoded no additional clip of those 320 nor of the random
/// 5 s window / concatenation attacks (128), and it would double the
/// wrong-payload bound.
const SECOND_TRY: bool = false;

/// The decoding policy: list-Viterbi decode `soft_a`; if no listed path
/// passes the CRC and `soft_b` is given, list-decode `soft_b` too. Returns the
/// decision and whether it came from `soft_b`.
fn decode_data(soft_a: &[f64], soft_b: Option<&[f64]>, list: usize) -> (code::Decoded, bool) {
    let dec = CODE.decode_list(soft_a, list);
    if dec.payload.is_none() {
        if let Some(b) = soft_b {
            let dec_b = CODE.decode_list(b, list);
            if dec_b.payload.is_some() {
                return (dec_b, true);
            }
        }
    }
    (dec, false)
}

/// Evaluation hook (harnesses, not the API): the payload the detector's
/// decoding policy returns for data soft values (see [`DataSoft`]) with list
/// size `list` (1 = plain Viterbi), with or without the second soft-value
/// set; `None` when no tried path passes the CRC. Ignores the p-value.
#[doc(hidden)]
pub fn decode_eval(soft: &DataSoft, list: usize, second_try: bool) -> Option<u64> {
    let b = second_try.then_some(soft.sensitivity.as_slice());
    decode_data(&soft.noise_model, b, list).0.payload
}

/// Summed data soft values at the best hypothesis (evaluation only).
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct DataSoft {
    /// The stage's p-value at that hypothesis from the pilots alone (as if
    /// the CRC had failed); with a CRC match the detector reports it × ρ,
    /// ρ = `LIST` × 2⁻¹⁶ (list size 16: 2.44e-4).
    pub p_value: f64,
    /// Soft values weighted by the noise model (first try), 180.
    pub noise_model: Vec<f64>,
    /// Soft values weighted by the tile sensitivity (second try), 180.
    pub sensitivity: Vec<f64>,
    /// Whether the detector's decision came from the second set.
    pub second: bool,
}

/// Half-width (frames) of the window over which the local pilot evidence is averaged (≈ 0.5 s).
const LOCAL_HALF: usize = 16;

/// Local mark amplitude around each frame at block phase `theta`: the
/// weighted mean pilot soft value `Σ w·cos / Σ w` over frames `t ± LOCAL_HALF`,
/// clamped at 0. ≈ 0 on unmarked stretches (concatenated audio) and small
/// where an attack has damaged the mark, so data symbols there are
/// down-weighted or dropped (maximum-ratio combining of the repetitions).
/// Only the decoder uses it; the p-value is computed before.
fn local_evidence(f: &Features, layout: &Layout, theta: usize) -> Vec<f64> {
    let n_frames = f.active.len();
    let mut num = vec![0f64; n_frames + 1];
    let mut den = vec![0f64; n_frames + 1];
    for t in 0..n_frames {
        let (mut a, mut b) = (0f64, 0f64);
        if f.active[t] {
            let phi = (t + theta) % BLOCK_FRAMES;
            for j in 0..SYMBOLS_PER_FRAME {
                let q = phi * SYMBOLS_PER_FRAME + j;
                if layout.role[q] == PILOT {
                    let (v, w) = f.soft(layout, t, q, layout.dither[q]);
                    a += v;
                    b += w;
                }
            }
        }
        num[t + 1] = num[t] + a;
        den[t + 1] = den[t] + b;
    }
    (0..n_frames)
        .map(|t| {
            let lo = t.saturating_sub(LOCAL_HALF);
            let hi = (t + LOCAL_HALF + 1).min(n_frames);
            let d = den[hi] - den[lo];
            if d > 1e-9 {
                ((num[hi] - num[lo]) / d).max(0.0)
            } else {
                0.0
            }
        })
        .collect()
}

/// Time ranges of the blocks (and partial blocks at the ends) whose symbols,
/// with the decoded payload as known bits, give z > 3; merged.
fn find_ranges(
    f: &Features,
    layout: &Layout,
    payload: u64,
    theta: usize,
    timing: FrameTiming,
    dur: f64,
) -> Vec<TimeRange> {
    let coded = CODE.encode(payload);
    let n_frames = f.active.len();
    let (frame_s, o_s) = (timing.frame_s, timing.start_s);
    let mut ranges: Vec<TimeRange> = Vec::new();
    // first block boundary: frame t with (t + theta) % B == 0
    let first = (BLOCK_FRAMES - theta % BLOCK_FRAMES) % BLOCK_FRAMES;
    let mut starts = vec![0usize];
    let mut b = first;
    while b < n_frames {
        if b > 0 {
            starts.push(b);
        }
        b += BLOCK_FRAMES;
    }
    for (i, &t0) in starts.iter().enumerate() {
        let t1 = starts.get(i + 1).copied().unwrap_or(n_frames);
        let (mut s, mut n) = (0f64, 0f64);
        let (mut lo, mut hi) = (usize::MAX, 0usize);
        for t in t0..t1 {
            if !f.active[t] {
                continue;
            }
            lo = lo.min(t);
            hi = hi.max(t + 1);
            let phi = (t + theta) % BLOCK_FRAMES;
            for j in 0..SYMBOLS_PER_FRAME {
                let q = phi * SYMBOLS_PER_FRAME + j;
                let bit = layout.bit(q, &coded);
                let (v, w) = f.soft(layout, t, q, layout.offset(q, bit));
                s += v;
                n += w * w;
            }
        }
        if z_of(s, n) > 3.0 {
            let start = (o_s + lo as f64 * frame_s).clamp(0.0, dur);
            let end = (o_s + hi as f64 * frame_s).clamp(0.0, dur);
            match ranges.last_mut() {
                Some(r) if start <= r.end_s + frame_s => r.end_s = r.end_s.max(end),
                _ => ranges.push(TimeRange {
                    start_s: start,
                    end_s: end,
                }),
            }
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stage p-value is a p-value under H0: p_pilots uniform, a CRC
    /// match independent of it with probability ρ (the worst case the
    /// bound allows). Checked by simulation at several levels, and the
    /// threshold it implies for the pilots.
    #[test]
    fn stage_p_value_is_valid_and_counts_the_crc() {
        let mut s = crate::keystream::KeyStream::new(&[7; 32], "test/stage-p");
        let n = 400_000;
        let levels = [1e-1, 1e-2, 1e-3, 1e-4];
        let mut below = [0usize; 4];
        for _ in 0..n {
            let p = (s.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let crc = ((s.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < CRC_FALSE_MATCH;
            let v = stage_p_value(p, crc);
            for (b, &a) in below.iter_mut().zip(&levels) {
                *b += usize::from(v <= a);
            }
        }
        for (&b, &a) in below.iter().zip(&levels) {
            let rate = b as f64 / n as f64;
            // ≤ a up to 4 binomial standard deviations
            let sd = (a * (1.0 - a) / n as f64).sqrt();
            assert!(rate <= a + 4.0 * sd, "P(p ≤ {a}) = {rate}");
        }
        // A CRC match lowers the pilots' requirement ~1/(2ρ)-fold:
        assert!(stage_p_value(2.5e-4, true) < crate::FALSE_POSITIVE_RATE);
        assert!(stage_p_value(2.6e-4, true) >= crate::FALSE_POSITIVE_RATE);
        assert!(stage_p_value(2.5e-4, false) >= crate::FALSE_POSITIVE_RATE);
        assert!(stage_p_value(6.2e-8, false) < crate::FALSE_POSITIVE_RATE);
        assert!(stage_p_value(6.3e-8, false) >= crate::FALSE_POSITIVE_RATE);
        assert_eq!(stage_p_value(1.0, false), 1.0);
        assert!((CRC_FALSE_MATCH - 16.0 / 65536.0).abs() < 1e-15);
    }
}
