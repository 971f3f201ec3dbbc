//! Keyed audio watermark: spread-transform dither modulation (STDM, a form of
//! quantisation index modulation; Chen & Wornell 2001) on short-time
//! band log-powers, under a per-frame masking constraint.
//!
//! # Method
//! * The mono mix is analysed at an internal rate of 8 kHz (zero-phase
//!   Kaiser-windowed-sinc resampling, so no delay is introduced) in
//!   non-overlapping frames of 256 samples (32 ms) with a √Hann window; any
//!   input rate 8–192 kHz, any channel count.
//! * Cells: 16 tiles of [`TILE_BINS`] = 5 FFT bins (156 Hz) covering
//!   500–3000 Hz (inside the telephone band with margin), `c = ln(E + ε)`,
//!   `ε` = [`EPS_REL`] × the frame's mean tile power, so tiles far below the
//!   frame's level (those added noise or a codec's noise filling replace)
//!   saturate. Band energies are what perceptual codecs preserve
//!   (Opus/CELT codes them explicitly; Valin et al. 2013).
//! * Symbols: 2 per frame, each the projection `s = Σ uᵢ cᵢ` of [`CELLS`] = 8
//!   adjacent tiles on the Thue–Morse direction `± (+ − − + − + + −)/√8`
//!   (keyed sign), orthogonal to constant, linear and quadratic trends: a
//!   volume change or a smooth equaliser/filter slope cancels. Bit `b` is
//!   embedded by moving `s` to the nearest point of the dithered lattice
//!   `Δ·(Z + d + b/2)` (keyed dither `d`), spreading the change over the tiles
//!   weighted by each tile's sensitivity `E/(E+ε)`, capped at `max_db`; the
//!   change is synthesised as the *difference* signal (per-tile gains on the
//!   original spectrum, √Hann synthesis) and refined in closed loop.
//!   Informed embedding: the host does not interfere with the decision.
//! * Masking: the mark is a gain on each 156 Hz band of each 32 ms frame, so
//!   its spectrum follows the host's (simultaneous masking within a critical
//!   band; Zwicker & Fastl 1990, Painter & Spanias 2000), and its power in every
//!   frame is kept [`AudioEmbedParams::mask_db`] below the frame's power.
//!   Samples that are exactly 0 are never changed; frames whose band power is
//!   < 1e-4 × the clip's 90th percentile are not marked.
//! * A block is [`BLOCK_FRAMES`] frames (4.99 s) × 2 = 312 symbols: 140 pilot
//!   symbols (known bit) and the 172 coded bits (64-bit payload + CRC-16,
//!   rate-1/2 K=7 convolutional code). Blocks repeat back to back, so any 5 s
//!   window holds one whole codeword (cyclically); longer clips combine the
//!   soft values of every repetition.
//! * Detection searches 32 sample offsets (1 ms steps) × 156 block phases.
//!   For each, `T = Σ_pilots w·cos(2π(s/Δ − d))` with a reliability weight
//!   `w` computed from the received signal only (mean over the symbol's tiles
//!   of `E/(E + ε + floor)`, `floor` = the tile's 10th-percentile power over
//!   the clip: minimum statistics, Martin 2001). On unmarked input the keyed
//!   dither makes every phase uniform and independent of `w`, so
//!   `z = T/√(Σw²/2)` is ≈ N(0,1) and `p = 1 − (1 − Φc(z))^M` with
//!   `M` = 4992 hypotheses (Šidák). Data symbols give weighted soft values,
//!   summed over every repetition, into the soft Viterbi decoder.

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

use crate::code::{self, CODED_BITS};
use crate::dsp::{resample, resample_zc};
use crate::stats::max_of_n_sf;
use crate::{Detection, TimeRange, WatermarkError, WatermarkKey};

const FS: u32 = 8000;
/// Frame length and hop at 8 kHz (32 ms).
const N: usize = 256;
/// First bin of the band (500 Hz).
const K0: usize = 16;
/// Bins in the band (500–3000 Hz).
const NB: usize = 80;
/// Adjacent bins summed into one cell (a 156 Hz × 32 ms tile).
pub const TILE_BINS: usize = 5;
/// Cells per frame.
const NC: usize = NB / TILE_BINS;
/// Cells per symbol (L).
pub const CELLS: usize = 8;
/// Symbols per frame.
pub const SYMBOLS_PER_FRAME: usize = NC / CELLS;
/// Frames per block (4.992 s).
pub const BLOCK_FRAMES: usize = 156;
const N_SYM: usize = BLOCK_FRAMES * SYMBOLS_PER_FRAME;
const REPS: usize = 1;
const N_PILOT: usize = N_SYM - REPS * CODED_BITS;
const PILOT: u16 = u16::MAX;
/// Quantiser step Δ of the projected log-power (nepers of power).
pub const DELTA: f32 = 0.8;
/// ε of the log-power feature relative to the local mean bin power.
pub const EPS_REL: f32 = 0.03;
/// Frames whose band power is below this fraction of the clip's 90th
/// percentile frame are not marked and ignored by the detector.
const ACTIVE_REL: f64 = 1e-4;
/// The noise floor of a cell is its 1/NOISE_PERCENTILE quantile over the clip's active frames.
const NOISE_PERCENTILE: usize = 10;
const OFFSET_STEP: usize = 8;
const N_OFFSETS: usize = N / OFFSET_STEP;
/// Number of synchronisation hypotheses searched.
const N_HYP: usize = N_OFFSETS * BLOCK_FRAMES;

/// Minimum clip duration (one block plus a little), seconds.
pub const MIN_SECONDS: f64 = 5.0;
/// Supported sample rates, Hz.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8000..=192_000;

/// Embedding parameters. The quantiser step ([`DELTA`]) is fixed (the
/// detector must know it); these control how far each symbol is moved.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioEmbedParams {
    /// Distortion-compensation factor α of DC-QIM (Chen & Wornell 2001):
    /// each symbol is moved a fraction α of the way to its lattice point
    /// (1 = all the way, most robust). Must be in (0, 1].
    pub alpha: f32,
    /// Cap of the log-power change of any one cell, dB.
    pub max_db: f32,
    /// Closed-loop refinement passes (re-analyse, correct the residual).
    pub iterations: usize,
    /// Masking constraint: in every 32 ms frame the mark's power is at least
    /// this many dB below the frame's power (and, being a gain on each
    /// 156 Hz band, has the frame's spectral shape), dB.
    pub mask_db: f32,
}

impl Default for AudioEmbedParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            max_db: 6.0,
            iterations: 6,
            mask_db: 28.0,
        }
    }
}

/// What embedding did.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioEmbedReport {
    /// Signal-to-watermark ratio over all channels (full band), dB.
    pub snr_db: f64,
    /// Seconds of the clip with enough in-band signal to carry the mark.
    pub marked_seconds: f64,
}

/// Keyed layout of one block.
struct Layout {
    /// `bins[q * CELLS + i]`: cell (0..NC) of the frame used by cell i of symbol q.
    bins: Vec<u8>,
    /// Sign of `u` for each cell.
    sign: Vec<f32>,
    /// Dither of each symbol, fraction of Δ in [0, 1).
    dither: Vec<f32>,
    /// Keyed sign of each symbol's direction (±1).
    flip: Vec<f32>,
    /// `cos 2πd` and `flip · sin 2πd` of each symbol's dither (pilot scan).
    pc: Vec<f32>,
    ps: Vec<f32>,
    /// Role of each symbol: pilot or coded-bit index.
    role: Vec<u16>,
    /// Dense direction `u` of each symbol over the NC cells of a frame (0 off-set).
    dense: Vec<f32>,
}

impl Layout {
    fn new(key: &WatermarkKey) -> Self {
        // Symbol j of a frame uses the CELLS adjacent cells j·L .. (j+1)·L with
        // the Thue–Morse signs + − − + − + + − (times a keyed sign): orthogonal to
        // constant, linear and quadratic trends over the 1.25 kHz span, so a
        // gain change or a smooth equaliser/filter slope cancels in `s`.
        let mut bins = Vec::with_capacity(N_SYM * CELLS);
        let mut sign = Vec::with_capacity(N_SYM * CELLS);
        let mut ss = key.stream("audio/v3/signs");
        let flips = ss.signs(N_SYM);
        for (q, &f) in flips.iter().enumerate() {
            let j = q % SYMBOLS_PER_FRAME;
            bins.extend((j * CELLS..(j + 1) * CELLS).map(|b| b as u8));
            sign.extend(TM.iter().map(|&v| v * f));
        }
        let mut ds = key.stream("audio/v3/dither");
        let dither: Vec<f32> = (0..N_SYM)
            .map(|_| ((ds.next_u64() >> 11) as f64 / (1u64 << 53) as f64) as f32)
            .collect();
        let perm = key.stream("audio/v3/roles").permutation(N_SYM);
        let mut role = vec![PILOT; N_SYM];
        for (i, &q) in perm.iter().enumerate() {
            if i >= N_PILOT {
                role[q] = ((i - N_PILOT) % CODED_BITS) as u16;
            }
        }
        let mut dense = vec![0f32; N_SYM * NC];
        let inv = 1.0 / (CELLS as f32).sqrt();
        for q in 0..N_SYM {
            for i in q * CELLS..(q + 1) * CELLS {
                dense[q * NC + bins[i] as usize] = sign[i] * inv;
            }
        }
        Self {
            bins,
            sign,
            pc: dither
                .iter()
                .map(|&d: &f32| (std::f32::consts::TAU * d).cos())
                .collect(),
            ps: dither
                .iter()
                .zip(&flips)
                .map(|(&d, &f): (&f32, &f32)| f * (std::f32::consts::TAU * d).sin())
                .collect(),
            flip: flips,
            dither,
            role,
            dense,
        }
    }

    /// Projection `s = Σ uᵢ cᵢ` of symbol `q` on the frame's cells `c` (len NC).
    fn project(&self, q: usize, c: &[f32]) -> f32 {
        dot(&self.dense[q * NC..(q + 1) * NC], c)
    }

    /// Lattice offset (fraction of Δ) for symbol `q` carrying `bit`.
    fn offset(&self, q: usize, bit: u8) -> f32 {
        self.dither[q] + 0.5 * f32::from(bit)
    }
}

/// Thue–Morse signs of a symbol's cells.
const TM: [f32; CELLS] = [1.0, -1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0];

/// Dot product with 8 independent accumulators (vectorises).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

fn sqrt_hann() -> Vec<f32> {
    (0..N)
        .map(|n| {
            let h = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N as f64).cos();
            h.sqrt() as f32
        })
        .collect()
}

fn check_rate(sample_rate: u32) -> Result<(), WatermarkError> {
    if SAMPLE_RATES.contains(&sample_rate) {
        Ok(())
    } else {
        Err(WatermarkError::UnsupportedSampleRate(sample_rate))
    }
}

struct Stft {
    win: Vec<f32>,
    fwd: Arc<dyn Fft<f32>>,
    inv: Arc<dyn Fft<f32>>,
}

impl Stft {
    fn new() -> Self {
        let mut planner = FftPlanner::<f32>::new();
        Self {
            win: sqrt_hann(),
            fwd: planner.plan_fft_forward(N),
            inv: planner.plan_fft_inverse(N),
        }
    }

    fn spectrum(&self, frame: &[f32]) -> Vec<Complex<f32>> {
        let mut buf: Vec<Complex<f32>> = frame
            .iter()
            .zip(&self.win)
            .map(|(&v, &w)| Complex::new(v * w, 0.0))
            .collect();
        self.fwd.process(&mut buf);
        buf
    }

    /// Spectra (bins 0..=N/2) of two real frames with one complex FFT of
    /// `a + i·b`: `A_k = (X_k + X*_{N−k})/2`, `B_k = (X_k − X*_{N−k})/(2i)`.
    fn spectrum_pair(
        &self,
        a: &[f32],
        b: &[f32],
        buf: &mut Vec<Complex<f32>>,
    ) -> [Vec<Complex<f32>>; 2] {
        buf.clear();
        buf.extend(
            a.iter()
                .zip(b)
                .zip(&self.win)
                .map(|((&x, &y), &w)| Complex::new(x * w, y * w)),
        );
        self.fwd.process(buf);
        let mut sa = Vec::with_capacity(N / 2 + 1);
        let mut sb = Vec::with_capacity(N / 2 + 1);
        for k in 0..=N / 2 {
            let x = buf[k];
            let y = buf[(N - k) % N].conj();
            sa.push((x + y) * 0.5);
            let d = (x - y) * 0.5;
            sb.push(Complex::new(d.im, -d.re));
        }
        [sa, sb]
    }
}

/// Log-power cells of one frame from its spectrum: cell `j` is the power
/// `E` of the [`TILE_BINS`] bins `K0 + j·G ..`, `c = ln(E + ε)` with
/// ε = [`EPS_REL`] × the frame's mean cell power, so cells well below the
/// frame's level (those additive noise or a codec's noise filling replace)
/// saturate and carry little. Returns (cells, band power, cell powers E).
fn cells(spec: &[Complex<f32>]) -> (Vec<f32>, f64, Vec<f32>) {
    let e: Vec<f64> = spec[K0..K0 + NB]
        .chunks_exact(TILE_BINS)
        .map(|b| b.iter().map(|c| f64::from(c.norm_sqr())).sum())
        .collect();
    let band: f64 = e.iter().sum();
    let eps = f64::from(EPS_REL) * band / NC as f64 + 1e-20;
    let c = e.iter().map(|&v| (v + eps).ln() as f32).collect();
    (c, band, e.iter().map(|&v| v as f32).collect())
}

/// Sensitivity `E/(E+ε)` of each cell's log-power to a gain change.
fn sensitivity(e: &[f32]) -> Vec<f32> {
    let eps = EPS_REL * e.iter().sum::<f32>() / NC as f32 + 1e-20;
    e.iter().map(|&v| v / (v + eps)).collect()
}

/// Frame features of `y` (8 kHz) for frames starting at `o + t·N`: per
/// frame and symbol slot `j`, the projection `Σ TMᵢ c_{jL+i} / √L` (the
/// symbol's `s` up to its keyed sign) and its reliability (mean sensitivity
/// `E/(E+ε)` of its cells), plus frame activity.
struct Features {
    /// Per (frame, slot): `w·cos(2π a)`, `w·sin(2π a)` with `a = proj/Δ`.
    cs: Vec<[f32; 2]>,
    /// Per (frame, slot): reliability weight `w`.
    rel: Vec<f32>,
    active: Vec<bool>,
}

fn activity(band: &[f64]) -> Vec<bool> {
    let mut sorted: Vec<f64> = band.to_vec();
    sorted.sort_by(f64::total_cmp);
    let r = sorted.get((sorted.len() * 9) / 10).copied().unwrap_or(0.0);
    let thr = (r * ACTIVE_REL).max(1e-14);
    band.iter().map(|&e| e > thr).collect()
}

fn features(stft: &Stft, y: &[f32], o: usize) -> Features {
    let n_frames = y.len().saturating_sub(o) / N;
    let mut proj = Vec::with_capacity(n_frames * SYMBOLS_PER_FRAME);
    let mut band = Vec::with_capacity(n_frames);
    let mut energy = Vec::with_capacity(n_frames * NC);
    let inv = 1.0 / (CELLS as f32).sqrt();
    let mut buf = Vec::with_capacity(N);
    let mut push = |spec: &[Complex<f32>]| {
        let (ct, e, en) = cells(spec);
        for j in 0..SYMBOLS_PER_FRAME {
            proj.push(dot(&TM, &ct[j * CELLS..(j + 1) * CELLS]) * inv);
        }
        energy.extend(en);
        band.push(e);
    };
    let mut t = 0;
    while t + 1 < n_frames {
        let s = o + t * N;
        let [a, b] = stft.spectrum_pair(&y[s..s + N], &y[s + N..s + 2 * N], &mut buf);
        push(&a);
        push(&b);
        t += 2;
    }
    if t < n_frames {
        let s = o + t * N;
        push(&stft.spectrum(&y[s..s + N]));
    }
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
    let mut rel = Vec::with_capacity(n_frames * SYMBOLS_PER_FRAME);
    for t in 0..n_frames {
        let e = &energy[t * NC..(t + 1) * NC];
        let eps = f64::from(EPS_REL) * e.iter().map(|&v| f64::from(v)).sum::<f64>() / NC as f64;
        for j in 0..SYMBOLS_PER_FRAME {
            let r: f64 = (j * CELLS..(j + 1) * CELLS)
                .map(|k| {
                    let v = f64::from(e[k]);
                    v / (v + eps + floor[k] + 1e-30)
                })
                .sum();
            rel.push((r / CELLS as f64) as f32);
        }
    }
    let cs = proj
        .iter()
        .zip(&rel)
        .map(|(&p, &w)| {
            let (sn, cn) = (std::f32::consts::TAU * p / DELTA).sin_cos();
            [w * cn, w * sn]
        })
        .collect();
    Features { cs, rel, active }
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

/// Embed `payload` into `channels[c][n]` (samples nominally in [-1, 1]) in place.
///
/// The mark is computed on the mono mix and the same difference signal is
/// added to every channel. Any sample rate in 8000..=192000 Hz.
///
/// # Errors
/// * [`WatermarkError::TooSmall`] if the clip is shorter than [`MIN_SECONDS`].
/// * [`WatermarkError::UnsupportedSampleRate`] outside 8000..=192000 Hz.
/// * [`WatermarkError::InvalidInput`] for no channels, channels of different
///   lengths, non-finite samples or invalid parameters.
pub fn embed(
    channels: &mut [Vec<f32>],
    sample_rate: u32,
    key: &WatermarkKey,
    payload: u64,
    params: &AudioEmbedParams,
) -> Result<AudioEmbedReport, WatermarkError> {
    check_rate(sample_rate)?;
    let Some(len) = channels.first().map(Vec::len) else {
        return Err(WatermarkError::InvalidInput("no channels".into()));
    };
    if channels.iter().any(|c| c.len() != len) {
        return Err(WatermarkError::InvalidInput(
            "channels differ in length".into(),
        ));
    }
    if channels.iter().flatten().any(|v| !v.is_finite()) {
        return Err(WatermarkError::InvalidInput("non-finite sample".into()));
    }
    let dur = len as f64 / f64::from(sample_rate);
    if dur < MIN_SECONDS {
        return Err(WatermarkError::TooSmall {
            what: format!("audio clip of {dur:.2} s, need at least {MIN_SECONDS:.1} s"),
        });
    }
    if !(params.alpha > 0.0 && params.alpha <= 1.0) {
        return Err(WatermarkError::InvalidInput(
            "alpha must be in (0, 1]".into(),
        ));
    }
    if !params.mask_db.is_finite() {
        return Err(WatermarkError::InvalidInput(
            "mask_db must be finite".into(),
        ));
    }
    if !(params.max_db.is_finite() && params.max_db > 0.0) {
        return Err(WatermarkError::InvalidInput("max_db must be > 0".into()));
    }
    let x8 = mono_8k(channels, sample_rate);
    let (d8, active_frames) = plan_delta(&x8, key, payload, params);
    let d = resample(&d8, FS, sample_rate);
    // The detector reads the mono mix: where some channels are exactly 0
    // (never modified) the others carry their share, so the mix changes by `d`.
    let nch = channels.len() as f32;
    let live: Vec<f32> = (0..len)
        .map(|i| channels.iter().filter(|c| c[i] != 0.0).count() as f32)
        .collect();
    let mut sig = 0f64;
    let mut noise = 0f64;
    for ch in channels.iter_mut() {
        for (i, v) in ch.iter_mut().enumerate() {
            sig += f64::from(*v) * f64::from(*v);
            if *v != 0.0 {
                let dv = d.get(i).copied().unwrap_or(0.0) * nch / live[i].max(1.0);
                noise += f64::from(dv) * f64::from(dv);
                *v += dv;
            }
        }
    }
    Ok(AudioEmbedReport {
        snr_db: 10.0 * (sig.max(1e-30) / noise.max(1e-30)).log10(),
        marked_seconds: (active_frames * N) as f64 / f64::from(FS),
    })
}

/// Informed embedding at 8 kHz: returns the difference signal and the number
/// of marked frames.
fn plan_delta(
    x8: &[f32],
    key: &WatermarkKey,
    payload: u64,
    params: &AudioEmbedParams,
) -> (Vec<f32>, usize) {
    let stft = Stft::new();
    let layout = Layout::new(key);
    let coded = code::encode(payload);
    let n_frames = x8.len() / N;
    let spectra: Vec<Vec<Complex<f32>>> = (0..n_frames)
        .map(|t| stft.spectrum(&x8[t * N..(t + 1) * N]))
        .collect();
    let mut band = Vec::with_capacity(n_frames);
    let mut orig_c = Vec::with_capacity(n_frames);
    for s in &spectra {
        let (c, e, _) = cells(s);
        orig_c.push(c);
        band.push(e);
    }
    let active = activity(&band);
    // Final projections wanted: s0 + α (lattice point − s0).
    let mut want = vec![0f32; n_frames * SYMBOLS_PER_FRAME];
    for t in 0..n_frames {
        let phi = t % BLOCK_FRAMES;
        for j in 0..SYMBOLS_PER_FRAME {
            let q = phi * SYMBOLS_PER_FRAME + j;
            let bit = match layout.role[q] {
                PILOT => 0,
                r => coded[r as usize],
            };
            let s0 = layout.project(q, &orig_c[t]);
            let off = layout.offset(q, bit);
            let target = DELTA * ((s0 / DELTA - off).round() + off);
            want[t * SYMBOLS_PER_FRAME + j] = s0 + params.alpha * (target - s0);
        }
    }
    let lam_max = params.max_db * std::f32::consts::LN_10 / 10.0;
    let mut orig_e = Vec::with_capacity(n_frames * NC);
    let mut cap = Vec::with_capacity(n_frames);
    let rel = 10f32.powf(-params.mask_db / 10.0);
    for sp in &spectra {
        orig_e.extend(cells(sp).2);
        cap.push(rel * sp.iter().map(Complex::norm_sqr).sum::<f32>());
    }
    let inv_sqrt_l = 1.0 / (CELLS as f32).sqrt();
    // λ: log-power change per cell.
    let mut lam = vec![0f32; n_frames * NC];
    let mut delta = vec![0f32; x8.len()];
    let mut frame = vec![0f32; N];
    for it in 0..=params.iterations {
        for t in 0..n_frames {
            if !active[t] {
                continue;
            }
            let s = t * N;
            for (f, (&a, &b)) in frame
                .iter_mut()
                .zip(x8[s..s + N].iter().zip(&delta[s..s + N]))
            {
                *f = a + b;
            }
            let (c, _, e) = if it == 0 {
                cells(&spectra[t])
            } else {
                cells(&stft.spectrum(&frame))
            };
            let w = sensitivity(&e);
            let phi = t % BLOCK_FRAMES;
            let lt = &mut lam[t * NC..(t + 1) * NC];
            for j in 0..SYMBOLS_PER_FRAME {
                let q = phi * SYMBOLS_PER_FRAME + j;
                let err = want[t * SYMBOLS_PER_FRAME + j] - layout.project(q, &c);
                let r = q * CELLS..(q + 1) * CELLS;
                let norm: f32 = layout.bins[r.clone()]
                    .iter()
                    .map(|&b| w[b as usize] * w[b as usize])
                    .sum::<f32>()
                    * inv_sqrt_l
                    * inv_sqrt_l;
                if norm <= 1e-6 {
                    continue;
                }
                // The √Hann² overlap halves the effect of a change: step ≈ 2.
                let mu = if it == 0 { 1.0 } else { 1.6 } * err / norm;
                for (&b, &u) in layout.bins[r.clone()].iter().zip(&layout.sign[r]) {
                    let l = &mut lt[b as usize];
                    *l = (*l + mu * u * inv_sqrt_l * w[b as usize]).clamp(-lam_max, lam_max);
                }
            }
            // Masking constraint: the mark's power in the frame (cell gains
            // on the original cell powers) stays `mask_db` below the frame.
            let oe = &orig_e[t * NC..(t + 1) * NC];
            let dist: f32 = lt
                .iter()
                .zip(oe)
                .map(|(&l, &e)| (0.5 * l).exp_m1().powi(2) * e)
                .sum();
            if dist > cap[t] {
                let k = (cap[t] / dist).sqrt();
                lt.iter_mut().for_each(|l| *l *= k);
            }
        }
        // Re-synthesise the difference signal from the original spectra.
        for t in 0..n_frames {
            if !active[t] {
                continue;
            }
            let mut d = vec![Complex::new(0f32, 0f32); N];
            for k in 0..NB {
                let g = (0.5 * lam[t * NC + k / TILE_BINS]).exp_m1();
                let kk = K0 + k;
                d[kk] = spectra[t][kk] * g;
                d[N - kk] = d[kk].conj();
            }
            stft.inv.process(&mut d);
            let s = t * N;
            for (i, o) in delta[s..s + N].iter_mut().enumerate() {
                *o = d[i].re / N as f32 * stft.win[i];
            }
        }
    }
    (delta, active.iter().filter(|&&a| a).count())
}

/// Zero crossings of the detector's resampling kernel (the embedder uses 12):
/// its wider transition band (≈ 3.3–3.9 kHz) stays above the 3 kHz band edge.
const DETECT_ZC: f64 = 8.0;

fn mono_8k(channels: &[Vec<f32>], sample_rate: u32) -> Vec<f32> {
    mono_8k_zc(channels, sample_rate, 12.0)
}

fn mono_8k_zc(channels: &[Vec<f32>], sample_rate: u32, zc: f64) -> Vec<f32> {
    let len = channels.iter().map(Vec::len).min().unwrap_or(0);
    let nch = channels.len().max(1) as f32;
    let mono: Vec<f32> = (0..len)
        .map(|i| {
            let s: f32 = channels.iter().map(|c| c[i]).sum::<f32>() / nch;
            if s.is_finite() {
                s
            } else {
                0.0
            }
        })
        .collect();
    resample_zc(&mono, sample_rate, FS, zc)
}

/// Pilot statistic at every block phase θ (frame t has block index (t+θ) mod B):
/// returns (T, Σw²) per θ with `T = Σ w·cos(2π(s/Δ − d))` over the pilots.
/// The weights depend on the received signal only and the keyed dither makes
/// every phase uniform on unmarked input, so `T/√(Σw²/2)` is ≈ N(0,1).
fn pilot_scan(f: &Features, layout: &Layout) -> Vec<(f64, f64)> {
    let n_frames = f.active.len();
    let pilots_of: Vec<Vec<usize>> = (0..BLOCK_FRAMES)
        .map(|phi| {
            (0..SYMBOLS_PER_FRAME)
                .map(|j| phi * SYMBOLS_PER_FRAME + j)
                .filter(|&q| layout.role[q] == PILOT)
                .collect()
        })
        .collect();
    (0..BLOCK_FRAMES)
        .map(|theta| {
            let mut t_sum = 0f64;
            let mut n = 0f64;
            for t in 0..n_frames {
                if !f.active[t] {
                    continue;
                }
                let phi = (t + theta) % BLOCK_FRAMES;
                for &q in &pilots_of[phi] {
                    let k = t * SYMBOLS_PER_FRAME + q % SYMBOLS_PER_FRAME;
                    let [c, s] = f.cs[k];
                    t_sum += f64::from(c * layout.pc[q] + s * layout.ps[q]);
                    n += f64::from(f.rel[k] * f.rel[k]);
                }
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
/// Clips shorter than [`MIN_SECONDS`] give `too_small = true`; unsupported
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
    let (det, soft) = detect_soft(channels, sample_rate, key);
    let acc = soft.map(|s| {
        let coded = code::encode(truth);
        let ok = coded
            .iter()
            .zip(&s)
            .filter(|(&c, &v)| (c == 0 && v > 0.0) || (c == 1 && v < 0.0))
            .count();
        ok as f64 / CODED_BITS as f64
    });
    (det, acc)
}

fn detect_soft(
    channels: &[Vec<f32>],
    sample_rate: u32,
    key: &WatermarkKey,
) -> (Detection, Option<Vec<f64>>) {
    let not_found = Detection {
        too_small: false,
        ..Detection::too_small()
    };
    if check_rate(sample_rate).is_err() || channels.is_empty() {
        return (not_found, None);
    }
    let len = channels.iter().map(Vec::len).min().unwrap_or(0);
    if (len as f64 / f64::from(sample_rate)) < MIN_SECONDS {
        return (Detection::too_small(), None);
    }
    let y = mono_8k_zc(channels, sample_rate, DETECT_ZC);
    let layout = Layout::new(key);
    let stft = Stft::new();
    // Coarse to fine: every other offset (2 ms steps), then the two
    // neighbours of the best. The statistic is the maximum over the
    // hypotheses evaluated, a subset of the full grid of N_HYP, so the
    // Šidák/Bonferroni correction for N_HYP stays valid (conservative).
    let mut best: Option<(f64, usize, usize, Features)> = None;
    let eval = |k: usize, best: &mut Option<(f64, usize, usize, Features)>| {
        let f = features(&stft, &y, k * OFFSET_STEP);
        let scan = pilot_scan(&f, &layout);
        let (theta, z) = scan
            .iter()
            .enumerate()
            .map(|(th, &(t, n))| (th, z_of(t, n)))
            .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
        if best.as_ref().is_none_or(|b| z > b.0) {
            *best = Some((z, k, theta, f));
        }
    };
    for k in (0..N_OFFSETS).step_by(2) {
        eval(k, &mut best);
    }
    if let Some(k0) = best.as_ref().map(|b| b.1) {
        eval((k0 + 1) % N_OFFSETS, &mut best);
        eval((k0 + N_OFFSETS - 1) % N_OFFSETS, &mut best);
    }
    let Some((score, bk, btheta, f)) = best else {
        return (not_found, None);
    };
    let score = if score.is_finite() { score } else { 0.0 };
    let p_value = max_of_n_sf(score, N_HYP);
    let local = local_evidence(&f, &layout, btheta);
    let mut soft_bits = vec![0f64; CODED_BITS];
    for (t, &lw) in local.iter().enumerate() {
        if !f.active[t] || lw <= 0.0 {
            continue;
        }
        let phi = (t + btheta) % BLOCK_FRAMES;
        for j in 0..SYMBOLS_PER_FRAME {
            let q = phi * SYMBOLS_PER_FRAME + j;
            let r = layout.role[q];
            if r != PILOT {
                soft_bits[r as usize] += lw * f.soft(&layout, t, q, layout.dither[q]).0;
            }
        }
    }
    let dec = code::decode(&soft_bits);
    let det = Detection::decide(&dec, p_value, score, |pl| {
        let dur = len as f64 / f64::from(sample_rate);
        find_ranges(&f, &layout, pl, btheta, bk * OFFSET_STEP, dur)
    });
    (det, Some(soft_bits))
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
    o: usize,
    dur: f64,
) -> Vec<TimeRange> {
    let coded = code::encode(payload);
    let n_frames = f.active.len();
    let frame_s = N as f64 / f64::from(FS);
    let o_s = o as f64 / f64::from(FS);
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
                let bit = match layout.role[q] {
                    PILOT => 0,
                    r => coded[r as usize],
                };
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
