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
//!   `Δ·(Z + d + b/2)` (keyed dither `d`; Δ = [`DELTA`] = 1.25 nepers in the
//!   layout written now, `audio/v5`, 1 in `audio/v4`), spreading the change over the tiles
//!   weighted by each tile's sensitivity `E/(E+ε)`, capped at `max_db`; the
//!   change is synthesised as the *difference* signal (per-tile gains on the
//!   original spectrum, √Hann synthesis) and refined in closed loop.
//!   Informed embedding: the host does not interfere with the decision.
//! * Masking: the mark is a gain on each 156 Hz band of each 32 ms frame, so
//!   its spectrum follows the host's (simultaneous masking within a critical
//!   band; Zwicker & Fastl 1990, Painter & Spanias 2000), and its power in every
//!   frame is kept [`AudioEmbedParams::mask_db`] below the frame's power;
//!   when that leaves the clip's SNR above [`AudioEmbedParams::min_snr_db`]
//!   (30.3 dB by default) the margin is lowered by the excess and the mark
//!   re-planned, so every clip spends its SNR budget.
//!   Samples that are exactly 0 are never changed; frames whose band power is
//!   < 1e-4 × the clip's 90th percentile are not marked.
//! * A block is [`BLOCK_FRAMES`] frames (4.99 s) × 2 = 312 symbols: 132 pilot
//!   symbols (known bit) and 180 data symbols carrying a
//!   [`AUDIO_PAYLOAD_BITS`](crate::AUDIO_PAYLOAD_BITS) = 32-bit payload +
//!   CRC-16 under a rate-1/4 K=7 convolutional code (generators 117, 127,
//!   155, 171 octal; free distance 20): 216 coded bits, one in 6 punctured,
//!   at keyed positions. Blocks repeat back to back, so any 5 s
//!   window holds one whole codeword (cyclically); longer clips combine the
//!   soft values of every repetition.
//! * Detection searches 32 sample offsets (1 ms steps) × 156 block phases.
//!   For each, `T = Σ_pilots w·cos(2π(s/Δ − d))` with a reliability weight
//!   `w` computed from the received signal only: each cell's noise floor `n`
//!   is 2 × its 10th-percentile power over the clip (minimum statistics,
//!   Martin 2001), its noise fraction `f = min(1, n/E)` gives `ln E` a
//!   variance ≈ `f(2 − f)/TILE_BINS`, the projection's σ² is the mean over
//!   the symbol's cells (times the squared sensitivity `E/(E+ε)`), and
//!   `w = exp(−π²σ²/Δ²)`, the square root of the soft value's expected
//!   amplitude under that noise. On unmarked input the keyed
//!   dither makes every phase uniform and independent of `w`, so
//!   `z = T/√(Σw²/2)` is ≈ N(0,1) and `p = 1 − (1 − Φc(z))^M` with
//!   `M` = 4992 hypotheses (Šidák). The search is coarse to fine (every
//!   other offset, then the neighbours of the best); the maximum over that
//!   subset is covered by the correction for all `M`. Data symbols give
//!   soft values `w²·cos(2π(s/Δ − d))` (`w²` the expected amplitude, the
//!   log-likelihood-ratio weight of a weak signal), weighted also by the
//!   local pilot evidence (mean pilot soft value
//!   within ±0.5 s, clamped at 0, so unmarked concatenated audio drops out),
//!   summed over every repetition, into a list Viterbi decoder (the 16 best
//!   paths, the best whose CRC checks wins; Seshadri & Sundberg 1994). (The
//!   plain Viterbi decoder's second try, the sums with the sensitivity
//!   weight `E/(E + ε + floor)` in place of `w`, is off: no gain with the
//!   list.)
//! * Speed search (stage 1, run only when the search above, stage 0, does
//!   not detect): a tempo change with the pitch kept (WSOLA, `sox tempo`)
//!   stretches the frame grid linearly. The block repeats with the same
//!   codeword, so the key-free autocorrelation of the symbols' lattice
//!   phases over the 2 ms grid of stage 0's features peaks at the stretched
//!   block length; its 8 highest peaks for speed factors 0.90–1.10 give
//!   candidate factors, and the keyed pilot test runs on each factor's
//!   frames (nearest grid point, every 2 ms offset and block phase; then the
//!   best peak's neighbouring factors ±0.02 % and ±1 ms at exact sample
//!   positions). The selection uses no key, so the Šidák correction for
//!   stage 1's 269 568 hypotheses (2 frame reads × 8 peaks × 3 factors × 36 offsets
//!   × 156 phases) holds. A clip needs two overlapping blocks
//!   (≳ 6 s after the stretch) for this search; stage 3 works within one.
//! * Stage 2, pitch search (`detection/pitch.rs`): a pitch shift scales
//!   every frequency by σ; each cell is read over the scaled band σ·[lo, hi)
//!   of the received spectrum, for σ = 2^(k/72), k = ±1…±7 (1/6-semitone
//!   steps, ±7/6 semitone), and the stage-0 search runs on each.
//! * Stage 3, tempo and speed within one block (`detection/scale.rs`): the
//!   pilot test over time-scale factors 0.90–1.10 in 0.25 % steps on two
//!   lines, tempo (frame grid stretched, frequencies kept) and speed
//!   (resampling: grid stretched and frequencies scaled), on the 2 ms grid of
//!   the first two blocks, then exact sample positions at the best.
//! * Layouts: the detector tries `audio/v5` then `audio/v4` (marks signed
//!   before issue 19), each with its stages.
//! * p-value: each stage's pilot p-value `pₛ` is combined with the CRC check
//!   of the payload decoded at its hypothesis. On unmarked audio (or under
//!   another key) the data symbols' signs are fair coins independent of the
//!   pilots, so a listed path passes the CRC with probability ≤ ρ =
//!   16 × 2⁻¹⁶ (list size × CRC); `qₛ = 2ρ·pₛ` with a CRC match, `2·pₛ`
//!   without, is then a p-value, and the 4 stages of the 2 layouts are
//!   combined by Bonferroni: the reported p-value is `min(1, 8 · min qₛ)`.
//!   A detection needs it below 1e-6 and the CRC, so the pilots need
//!   `pₛ ≲ 2.6e-4` (z ≳ 5.3 at stage 0, ≳ 5.8 at stage 2, ≳ 6.3 at stage 3).
//! * Embedding leans on the weaker cells: a symbol's log-power change is
//!   spread over its cells with weight `E/(E+ε) · (E/Ē)^γ`, γ =
//!   [`AudioEmbedParams::level_exponent`] = −0.25; a cell's share of the
//!   mark's power is ≈ `E·λ²/4`, so the same projection move costs less
//!   power and, within the SNR budget, more symbols reach their lattice point.

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

use crate::code::AUDIO as CODE;
use crate::dsp::resample_zc;
use crate::{WatermarkError, WatermarkKey};

mod detection;
mod embedding;

pub use detection::{
    cell_log_powers, decode_eval, decoded_p_value, detect, detect_diag, detect_eval,
    detect_eval_soft, DataSoft,
};
pub use embedding::embed;

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
/// Pilot symbols per block; the other `N_SYM − N_PILOT` = 180 carry the
/// audio code's 180 transmitted bits (216 coded bits, 36 punctured). (120
/// pilots with the 64-bit payload's rate-1/2 code; with the 32-bit payload's
/// stronger code the harness decoded more with 132 than with 120 or 144.)
const N_PILOT: usize = 132;
const _: () = assert!(N_SYM - N_PILOT == CODE.n_out);
const PILOT: u16 = u16::MAX;
/// Quantiser step Δ of the projected log-power (nepers of power) of the
/// layout the embedder writes (`audio/v5`).
pub const DELTA: f32 = 1.25;
/// Quantiser step of the previous layout (`audio/v4`), still detected.
pub const DELTA_V4: f32 = 1.0;

/// A version of the mark's layout: what a detector must know besides the
/// key. `audio/v5` differs from `audio/v4` in its keystream labels and in
/// the quantiser step Δ (1.25 instead of 1 neper: on the issue-19 tuning half
/// of 5 s real-speech windows, Opus 32k 19 → 25, pink noise 20 dB 17 → 20,
/// white noise 20 dB 12 → 13 of 26 detected; see docs/DECISIONS.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scheme {
    /// Keystream label prefix.
    pub label: &'static str,
    /// Quantiser step Δ (nepers of power).
    pub delta: f32,
}

/// The layout the embedder writes.
pub(crate) const V5: Scheme = Scheme {
    label: "audio/v5",
    delta: DELTA,
};
/// The previous layout, read so that marks already signed keep detecting.
pub(crate) const V4: Scheme = Scheme {
    label: "audio/v4",
    delta: DELTA_V4,
};
/// Layouts the detector tries, in order (the first is the embedder's). The
/// detector's p-value is corrected for their number (Bonferroni).
pub(crate) const SCHEMES: [Scheme; 2] = [V5, V4];
/// ε of the log-power feature relative to the local mean bin power.
pub const EPS_REL: f32 = 0.03;
/// Frames whose band power is below this fraction of the clip's 90th
/// percentile frame are not marked and ignored by the detector.
const ACTIVE_REL: f64 = 1e-4;
/// The noise floor of a cell is its 1/NOISE_PERCENTILE quantile over the clip's active frames.
const NOISE_PERCENTILE: usize = 10;
/// Mean noise power of a cell relative to that percentile (the 10th
/// percentile of a 10-degree-of-freedom χ² is ≈ 0.49 × its mean).
const NOISE_FLOOR_SCALE: f64 = 2.0;
const OFFSET_STEP: usize = 8;
const N_OFFSETS: usize = N / OFFSET_STEP;
/// Number of synchronisation hypotheses searched.
const N_HYP: usize = N_OFFSETS * BLOCK_FRAMES;

/// Minimum clip duration (one block plus a little), seconds.
pub const MIN_SECONDS: f64 = 5.0;
/// Shortest clip the detector reads, seconds: 88 % of a block, so a 5 s
/// marked clip sped up by 10 % (4.55 s) is still read (the missing symbols
/// are erasures to the decoder); shorter clips are `too_small`.
pub const DETECT_MIN_SECONDS: f64 = 4.4;
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
    /// 156 Hz band, has the frame's spectral shape), dB. This is the first
    /// plan's margin; `min_snr_db` may lower it (a louder mark).
    pub mask_db: f32,
    /// SNR budget of the whole clip (signal over mark, all channels), dB:
    /// when the mark planned at `mask_db` leaves the clip's SNR more than
    /// 0.3 dB above this, the frame margin is lowered by the excess (at most
    /// 8 dB) and the mark re-planned (up to 3 times), keeping the loudest plan
    /// whose SNR is still ≥ this. `None`: the margin `mask_db` alone.
    pub min_snr_db: Option<f32>,
    /// Exponent γ of the per-cell weight `(E/Ē)^γ` (capped at 4) with which
    /// a symbol's log-power change is spread over its cells (`Ē` the frame's
    /// mean cell power), on top of the sensitivity `E/(E+ε)`. A cell's share
    /// of the mark's power is ≈ `E·λ²/4` for a log-power change `λ`, so γ < 0
    /// moves the projection with less power and, under the same SNR budget,
    /// more symbols reach their lattice point (harness, 64 clips: AAC 64k
    /// 45 → 61, white noise 20 dB 43 → 58 of 64 at γ = −0.25; γ > 0 is worse
    /// on every attack). In [−2, 2]; 0 = the sensitivity alone.
    pub level_exponent: f32,
}

impl Default for AudioEmbedParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            max_db: 6.0,
            iterations: 6,
            mask_db: 28.0,
            min_snr_db: Some(30.3),
            level_exponent: -0.25,
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
    /// Quantiser step Δ of the layout's version.
    delta: f32,
    /// `cos 2πd` and `flip · sin 2πd` of each symbol's dither (pilot scan).
    pc: Vec<f32>,
    ps: Vec<f32>,
    /// Role of each symbol: pilot or transmitted-bit index (0..180).
    role: Vec<u16>,
    /// Dense direction `u` of each symbol over the NC cells of a frame (0 off-set).
    dense: Vec<f32>,
}

impl Layout {
    fn new(key: &WatermarkKey, scheme: &Scheme) -> Self {
        // Symbol j of a frame uses the CELLS adjacent cells j·L .. (j+1)·L with
        // the Thue–Morse signs + − − + − + + − (times a keyed sign): orthogonal to
        // constant, linear and quadratic trends over the 1.25 kHz span, so a
        // gain change or a smooth equaliser/filter slope cancels in `s`.
        let mut bins = Vec::with_capacity(N_SYM * CELLS);
        let mut sign = Vec::with_capacity(N_SYM * CELLS);
        let mut ss = key.stream(&format!("{}/signs", scheme.label));
        let flips = ss.signs(N_SYM);
        for (q, &f) in flips.iter().enumerate() {
            let j = q % SYMBOLS_PER_FRAME;
            bins.extend((j * CELLS..(j + 1) * CELLS).map(|b| b as u8));
            sign.extend(TM.iter().map(|&v| v * f));
        }
        let mut ds = key.stream(&format!("{}/dither", scheme.label));
        let dither: Vec<f32> = (0..N_SYM)
            .map(|_| ((ds.next_u64() >> 11) as f64 / (1u64 << 53) as f64) as f32)
            .collect();
        let perm = key
            .stream(&format!("{}/roles", scheme.label))
            .permutation(N_SYM);
        let mut role = vec![PILOT; N_SYM];
        for (i, &q) in perm.iter().enumerate() {
            if i >= N_PILOT {
                role[q] = (i - N_PILOT) as u16;
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
            delta: scheme.delta,
            dither,
            role,
            dense,
        }
    }

    /// Projection `s = Σ uᵢ cᵢ` of symbol `q` on the frame's cells `c` (len NC).
    fn project(&self, q: usize, c: &[f32]) -> f32 {
        dot(&self.dense[q * NC..(q + 1) * NC], c)
    }

    /// Bit carried by symbol `q` of the block: 0 for a pilot, else its
    /// transmitted bit (`coded` from [`CODE`]`.encode`).
    fn bit(&self, q: usize, coded: &[u8]) -> u8 {
        match self.role[q] {
            PILOT => 0,
            r => coded[r as usize],
        }
    }

    /// Lattice offset (fraction of Δ) for symbol `q` carrying `bit`.
    fn offset(&self, q: usize, bit: u8) -> f32 {
        self.dither[q] + 0.5 * f32::from(bit)
    }
}

/// Thue–Morse signs of a symbol's cells.
const TM: [f32; CELLS] = {
    let mut t = [0f32; CELLS];
    let mut i = 0;
    while i < CELLS {
        t[i] = if i.count_ones() % 2 == 0 { 1.0 } else { -1.0 };
        i += 1;
    }
    t
};

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
    log_cells(e)
}

/// Cumulative power of the bins 0..=N/2 of `spec`: element `k` is the power
/// of bins `0..k` (length N/2 + 2).
fn cum_power(spec: &[Complex<f32>]) -> Vec<f64> {
    let mut cum = Vec::with_capacity(N / 2 + 2);
    let mut acc = 0f64;
    cum.push(0.0);
    for c in &spec[..=N / 2] {
        acc += f64::from(c.norm_sqr());
        cum.push(acc);
    }
    cum
}

/// [`cells`] of a spectrum whose frequencies were scaled by `sigma` (a pitch
/// shift by `12·log2(sigma)` semitones, or a resampling speed change), from
/// its cumulative power `cum` ([`cum_power`]): cell `j` reads the power over
/// the scaled band `sigma · [K0 + jG − ½, K0 + (j+1)G − ½)` (bin `k` covering
/// `[k − ½, k + ½)`, fractional bins by linear share), so the tiles of the
/// original fall on the cells again. `sigma = 1` gives [`cells`] (up to
/// rounding); `sigma` in [0.5, 1.3] keeps the band below the Nyquist bin.
fn cells_from_cum(cum: &[f64], sigma: f32) -> (Vec<f32>, f64, Vec<f32>) {
    let last = cum.len() - 1;
    // Power below frequency x (bins), bin k covering [k − ½, k + ½).
    let below = |x: f64| -> f64 {
        let u = (x + 0.5).clamp(0.0, last as f64);
        let i = (u.floor() as usize).min(last);
        let frac = u - i as f64;
        cum[i]
            + if i < last {
                frac * (cum[i + 1] - cum[i])
            } else {
                0.0
            }
    };
    let sg = f64::from(sigma);
    let e = (0..NC)
        .map(|j| {
            let lo = sg * ((K0 + j * TILE_BINS) as f64 - 0.5);
            let hi = sg * ((K0 + (j + 1) * TILE_BINS) as f64 - 0.5);
            (below(hi) - below(lo)).max(0.0)
        })
        .collect();
    log_cells(e)
}

/// The log-power cells, band power and cell powers of the cell powers `e`.
fn log_cells(e: Vec<f64>) -> (Vec<f32>, f64, Vec<f32>) {
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

fn activity(band: &[f64]) -> Vec<bool> {
    let mut sorted: Vec<f64> = band.to_vec();
    sorted.sort_by(f64::total_cmp);
    let r = sorted.get((sorted.len() * 9) / 10).copied().unwrap_or(0.0);
    let thr = (r * ACTIVE_REL).max(1e-14);
    band.iter().map(|&e| e > thr).collect()
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
