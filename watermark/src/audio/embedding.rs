//! Informed embedding: closed-loop STDM on the band log-powers under the
//! per-frame masking constraint (see the parent module).

use rustfft::num_complex::Complex;

use super::*;
use crate::dsp::resample;

/// Embed the [`AUDIO_PAYLOAD_BITS`](crate::AUDIO_PAYLOAD_BITS)-bit `payload`
/// into `channels[c][n]` (samples nominally in [-1, 1]) in place.
///
/// The mark is computed on the mono mix and the same difference signal is
/// added to every channel. Any sample rate in 8000..=192000 Hz.
///
/// # Errors
/// * [`WatermarkError::TooSmall`] if the clip is shorter than [`MIN_SECONDS`].
/// * [`WatermarkError::UnsupportedSampleRate`] outside 8000..=192000 Hz.
/// * [`WatermarkError::InvalidInput`] for no channels, channels of different
///   lengths, a payload ≥ 2^32, non-finite samples or invalid parameters (`alpha` outside
///   (0, 1], `max_db` ≤ 0, non-finite `mask_db` or `min_snr_db`,
///   `level_exponent` outside [−2, 2]).
///
/// The report's `snr_db` is signal over mark power summed over all channels
/// (full band, at `sample_rate`); with the default `min_snr_db` it is ≈ 30.3–31 dB
/// unless the first plan at `mask_db` is already quieter.
pub fn embed(
    channels: &mut [Vec<f32>],
    sample_rate: u32,
    key: &WatermarkKey,
    payload: u64,
    params: &AudioEmbedParams,
) -> Result<AudioEmbedReport, WatermarkError> {
    check_rate(sample_rate)?;
    if payload >> crate::AUDIO_PAYLOAD_BITS != 0 {
        return Err(WatermarkError::InvalidInput(format!(
            "audio payload {payload:#x} does not fit in {} bits",
            crate::AUDIO_PAYLOAD_BITS
        )));
    }
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
    if params.min_snr_db.is_some_and(|v| !v.is_finite()) {
        return Err(WatermarkError::InvalidInput(
            "min_snr_db must be finite".into(),
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
    if !(-2.0..=2.0).contains(&params.level_exponent) {
        return Err(WatermarkError::InvalidInput(
            "level_exponent must be in [-2, 2]".into(),
        ));
    }
    let x8 = mono_8k(channels, sample_rate);
    // The detector reads the mono mix: where some channels are exactly 0
    // (never modified) the others carry their share, so the mix changes by `d`.
    let nch = channels.len() as f32;
    let live: Vec<f32> = (0..len)
        .map(|i| channels.iter().filter(|c| c[i] != 0.0).count() as f32)
        .collect();
    let sig: f64 = channels
        .iter()
        .flatten()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum();
    let noise_of = |d: &[f32]| -> f64 {
        channels
            .iter()
            .map(|ch| {
                ch.iter()
                    .enumerate()
                    .filter(|(_, &v)| v != 0.0)
                    .map(|(i, _)| {
                        f64::from(d.get(i).copied().unwrap_or(0.0) * nch / live[i].max(1.0)).powi(2)
                    })
                    .sum::<f64>()
            })
            .sum()
    };
    let snr_of = |noise: f64| 10.0 * (sig.max(1e-30) / noise.max(1e-30)).log10();
    // First plan at the frame margin `mask_db`; while the clip's SNR is more
    // than SNR_SLACK_DB above `min_snr_db`, lower the margin by the excess
    // (a louder mark, same spectral shape) and re-plan, keeping the last plan
    // whose SNR is still ≥ `min_snr_db`.
    let mut mask = params.mask_db;
    let (d8, active_frames) = plan_delta(&x8, key, payload, params, mask);
    let mut d = resample(&d8, FS, sample_rate);
    let mut noise = noise_of(&d);
    let mut active_frames = active_frames;
    if let Some(target) = params.min_snr_db {
        for _ in 0..SNR_REPLANS {
            let excess = snr_of(noise) - f64::from(target);
            if !excess.is_finite()
                || excess <= SNR_SLACK_DB
                || mask <= params.mask_db - MAX_BOOST_DB
            {
                break;
            }
            mask = (mask - excess as f32).max(params.mask_db - MAX_BOOST_DB);
            let (d8b, af) = plan_delta(&x8, key, payload, params, mask);
            let db = resample(&d8b, FS, sample_rate);
            let nb = noise_of(&db);
            if snr_of(nb) < f64::from(target) {
                break;
            }
            (d, noise, active_frames) = (db, nb, af);
        }
    }
    for ch in channels.iter_mut() {
        for (i, v) in ch.iter_mut().enumerate() {
            if *v != 0.0 {
                *v += d.get(i).copied().unwrap_or(0.0) * nch / live[i].max(1.0);
            }
        }
    }
    Ok(AudioEmbedReport {
        snr_db: snr_of(noise),
        marked_seconds: (active_frames * N) as f64 / f64::from(FS),
    })
}

/// Re-plans allowed to approach [`AudioEmbedParams::min_snr_db`].
const SNR_REPLANS: usize = 3;
/// Headroom above the SNR target that is left unused, dB.
const SNR_SLACK_DB: f64 = 0.3;
/// Largest reduction of the frame margin below `mask_db`, dB.
const MAX_BOOST_DB: f32 = 8.0;

/// Informed embedding at 8 kHz: returns the difference signal and the number
/// of marked frames.
fn plan_delta(
    x8: &[f32],
    key: &WatermarkKey,
    payload: u64,
    params: &AudioEmbedParams,
    mask_db: f32,
) -> (Vec<f32>, usize) {
    let stft = Stft::new();
    let layout = Layout::new(key, &V5);
    let coded = CODE.encode(payload);
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
            let bit = layout.bit(q, &coded);
            let s0 = layout.project(q, &orig_c[t]);
            let off = layout.offset(q, bit);
            let target = layout.delta * ((s0 / layout.delta - off).round() + off);
            want[t * SYMBOLS_PER_FRAME + j] = s0 + params.alpha * (target - s0);
        }
    }
    let lam_max = params.max_db * std::f32::consts::LN_10 / 10.0;
    let mut orig_e = Vec::with_capacity(n_frames * NC);
    let mut cap = Vec::with_capacity(n_frames);
    let rel = 10f32.powf(-mask_db / 10.0);
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
            let rw = level_weights(&e, params.level_exponent);
            let phi = t % BLOCK_FRAMES;
            let lt = &mut lam[t * NC..(t + 1) * NC];
            for j in 0..SYMBOLS_PER_FRAME {
                let q = phi * SYMBOLS_PER_FRAME + j;
                let err = want[t * SYMBOLS_PER_FRAME + j] - layout.project(q, &c);
                let r = q * CELLS..(q + 1) * CELLS;
                let norm: f32 = layout.bins[r.clone()]
                    .iter()
                    .map(|&b| w[b as usize] * w[b as usize] * rw[b as usize])
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
                    let step = mu * u * inv_sqrt_l * w[b as usize] * rw[b as usize];
                    *l = (*l + step).clamp(-lam_max, lam_max);
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

/// Largest level weight of [`level_weights`].
const LEVEL_WEIGHT_MAX: f32 = 4.0;

/// Per-cell weight `(E/Ē)^γ` (capped at [`LEVEL_WEIGHT_MAX`]) of the log-power
/// change, `Ē` the frame's mean cell power, `γ` =
/// [`AudioEmbedParams::level_exponent`]. The mark's power in a cell is
/// ≈ `E·λ²/4` for a log-power change `λ`, so moving a symbol's projection by a
/// given amount costs least when the change leans on the weaker cells; with
/// γ < 0 a frame reaches its lattice point with less of its masking budget.
fn level_weights(e: &[f32], gamma: f32) -> Vec<f32> {
    if gamma == 0.0 {
        return vec![1.0; e.len()];
    }
    let mean = e.iter().sum::<f32>() / e.len().max(1) as f32 + 1e-20;
    e.iter()
        .map(|&v| ((v + 1e-20) / mean).powf(gamma).min(LEVEL_WEIGHT_MAX))
        .collect()
}
