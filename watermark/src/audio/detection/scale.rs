//! Stage 3 of detection: the time-scale search that works within one block.
//! Stage 1 finds a tempo change from the repetition of the block, so it
//! needs two overlapping blocks (≳ 6 s); a 5 s clip holds one. Here the
//! keyed pilot test itself is run over a grid of time-scale factors r
//! (0.90–1.10 in [`SCALE_STEP`] steps) on two lines: a **tempo** change
//! (WSOLA, `sox tempo r`: frame `t` of the mark at `t·N/r`, frequencies
//! kept) and a **speed** change (resampling, `sox speed r`: the same frame
//! grid, every frequency × r, read with [`cells_from_cum`]). With the frame
//! grid stretched by a factor off by `e`, the last frame of a block is off
//! by `156·e` frames: the 0.25 % steps keep that ≤ 0.2 frame (6 ms).
//! Coarse: the frames of the 2 ms grid nearest to `o + t·step` (step =
//! 16/r grid points), offsets `o` every 4 ms, the first [`COARSE_FRAMES`]
//! frames; fine: the best hypothesis' frames at their exact sample
//! positions, at its offset and every 1 ms within ±4 ms. The p-value is the
//! Šidák correction for all [`SCALE_HYP`] hypotheses (the search evaluates a
//! subset), combined with the CRC like every stage ([`stage_p_value`]).

use super::*;

/// Relative step of the factor grid.
pub(super) const SCALE_STEP: f64 = 0.0025;
/// Factors per side of 1 on each line: 1 ± SCALE_STEP·i, i = 1..=40 (±10 %).
const SCALE_STEPS: usize = 40;
/// Frames read by the coarse search (one block, ≈ 5 s).
const COARSE_FRAMES: usize = BLOCK_FRAMES;
/// Offset step of the coarse search, grid points (4 ms).
const COARSE_OFFSET_STEP: usize = 2;
/// Stage 3's hypotheses for the Šidák correction: 2 lines × 80 factors ×
/// 1 ms offsets within the longest stretched frame (32 ms / 0.9) × block
/// phases × 2 ways of reading a frame (nearest 2 ms grid point, exact
/// sample position).
pub(super) const SCALE_HYP: usize =
    2 * 2 * SCALE_STEPS * (2 * GRID_PER_FRAME * 10).div_ceil(9) * BLOCK_FRAMES * 2;

/// The factors of one line, nearest to 1 first.
fn factors() -> impl Iterator<Item = f64> {
    (1..=SCALE_STEPS).flat_map(|i| {
        let d = SCALE_STEP * i as f64;
        [1.0 - d, 1.0 + d]
    })
}

/// Stage 3 on the 8 kHz mono mix `y` (`dur` seconds) under `layout`:
/// `None` when the best hypothesis could neither detect nor beat
/// `p_before` (the earlier stages' p-value) even with a CRC match.
pub(super) fn search(
    y: &[f32],
    dur: f64,
    layout: &Layout,
    pilots: &Pilots,
    stft: &Stft,
    p_before: f64,
) -> Option<(Detection, Option<DataSoft>)> {
    const G: usize = 2 * OFFSET_STEP;
    // Cumulative power spectra on the 2 ms grid, as far as the coarse
    // search reads (the slowest factor stretches its frames by 1/0.9).
    let reach = ((COARSE_FRAMES + 1) as f64 * N as f64 / (1.0 - SCALE_STEP * SCALE_STEPS as f64))
        as usize
        + N;
    let n_grid = (y.len().min(reach).saturating_sub(N)) / G + 1;
    if y.len() < N {
        return None;
    }
    let mut cum: Vec<Vec<f64>> = Vec::with_capacity(n_grid);
    let mut buf = Vec::with_capacity(N);
    let mut g = 0;
    while g < n_grid {
        let s = g * G;
        if g + 1 < n_grid {
            let s2 = s + G;
            let [a, b] = stft.spectrum_pair(&y[s..s + N], &y[s2..s2 + N], &mut buf);
            cum.push(cum_power(&a));
            cum.push(cum_power(&b));
            g += 2;
        } else {
            cum.push(cum_power(&stft.spectrum(&y[s..s + N])));
            g += 1;
        }
    }
    let inv = 1.0 / (CELLS as f32).sqrt();
    // (z, speed line, factor, offset in grid points, phase)
    let mut best: Option<(f64, bool, f64, usize, usize)> = None;
    for speed in [false, true] {
        for r in factors() {
            let step = GRID_PER_FRAME as f64 / r;
            let sigma = if speed { r as f32 } else { 1.0 };
            for o in (0..step.ceil() as usize).step_by(COARSE_OFFSET_STEP) {
                let mut proj = Vec::with_capacity(COARSE_FRAMES * SYMBOLS_PER_FRAME);
                let mut band = Vec::with_capacity(COARSE_FRAMES);
                let mut energy = Vec::with_capacity(COARSE_FRAMES * NC);
                for t in 0..COARSE_FRAMES {
                    let gi = (o as f64 + t as f64 * step).round() as usize;
                    let Some(c) = cum.get(gi) else { break };
                    let (ct, e, en) = cells_from_cum(c, sigma);
                    for j in 0..SYMBOLS_PER_FRAME {
                        proj.push(dot(&TM, &ct[j * CELLS..(j + 1) * CELLS]) * inv);
                    }
                    energy.extend(en);
                    band.push(e);
                }
                let f = finish_features(proj, band, energy, layout.delta);
                let (theta, z) = best_phase(&pilot_scan_frames(all_frames(&f), pilots));
                if best.is_none_or(|b| z > b.0) {
                    best = Some((z, speed, r, o, theta));
                }
            }
        }
    }
    let (_, speed, r, o, _) = best?;
    // Fine: the whole clip at exact sample positions, offsets within ±4 ms.
    let step = GRID_PER_FRAME as f64 / r;
    let sigma = if speed { r as f32 } else { 1.0 };
    let mut fine: Option<(f64, f64, usize, Features)> = None;
    for d in [0.0, -0.5, 0.5, -1.0, 1.0, -1.5, 1.5, -2.0, 2.0] {
        let off = o as f64 + d;
        let off = if off < 0.0 { off + step } else { off };
        let starts = stretched_starts(y.len(), off, step);
        let f = features_scaled(stft, y, &starts, layout.delta, &[sigma]).pop()?;
        let (theta, z) = best_phase(&pilot_scan_frames(all_frames(&f), pilots));
        if fine.as_ref().is_none_or(|b| z > b.0) {
            fine = Some((z, off, theta, f));
        }
    }
    let (z, off, theta, f) = fine?;
    let g_s = G as f64 / f64::from(FS);
    let timing = FrameTiming {
        start_s: off * g_s,
        frame_s: step * g_s,
        scale: Some(1.0 / r),
    };
    let best = Best { f: &f, theta, z };
    decide_stage(best, layout, SCALE_HYP, p_before, timing, dur)
}
