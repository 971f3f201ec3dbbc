//! Stage 2 of detection: the pitch search. A pitch shift with the duration
//! kept (`sox pitch`: WSOLA time stretch, then resampling; any phase-vocoder
//! shifter) scales every frequency by a factor σ and leaves the frame grid
//! in place, so the 156 Hz tiles of the mark move by up to one tile at the
//! top of the band for ±1 semitone (σ = 2^(±1/12) ≈ 1.0595 / 0.9439) and the
//! symbols' log-power projections decorrelate. Reading each cell over the
//! scaled band `σ·[lo, hi)` of the received spectrum ([`cells_from_cum`])
//! puts the original tiles back on the cells; the keyed pilot test then runs
//! as in stage 0 for every factor of [`PITCH_FACTORS`] (2 ms offsets, every
//! block phase), and the best hypothesis' neighbouring 1 ms offsets at the
//! best factor refine it. The p-value is the Šidák correction for all
//! [`PITCH_HYP`] hypotheses (factors × offsets × phases; the search
//! evaluates a subset), combined with the CRC like every stage
//! ([`stage_p_value`]).

use super::*;

/// Frequency-scale factors searched: `2^(k/72)` for k = ±1 … ±7, i.e. steps
/// of 1/6 semitone (≈ 0.97 %) up to ±7/6 semitone (−6.5 % … +7.0 %; 1.0 is
/// stage 0), so whole-semitone shifts fall on a grid point. Between grid
/// points the scale error is ≤ 0.49 %, ≤ 15 Hz at the top of the
/// 500–3000 Hz band (0.1 tile).
pub(super) const PITCH_FACTORS: [f32; 14] = [
    0.9348312, 0.9438743, 0.9530049, 0.9622238, 0.9715319, 0.9809301, 0.9904191, 1.0096735,
    1.0194406, 1.0293022, 1.0392592, 1.0493125, 1.0594631, 1.0697118,
];

/// Stage 2's hypotheses for the Šidák correction: factors × 1 ms offsets ×
/// block phases.
pub(super) const PITCH_HYP: usize = PITCH_FACTORS.len() * N_HYP;

/// Features of the frames at sample offset `o` for every factor of `sigmas`.
fn scaled_at(stft: &Stft, y: &[f32], o: usize, delta: f32, sigmas: &[f32]) -> Vec<Features> {
    let n_frames = y.len().saturating_sub(o) / N;
    let starts: Vec<usize> = (0..n_frames).map(|t| o + t * N).collect();
    features_scaled(stft, y, &starts, delta, sigmas)
}

/// Stage 2 on the 8 kHz mono mix `y` (`dur` seconds) under `layout`:
/// `None` when the best hypothesis could neither detect nor beat
/// `p_before` (the earlier stages' p-value) even with a CRC match, so its
/// payload is not decoded.
pub(super) fn search(
    y: &[f32],
    dur: f64,
    layout: &Layout,
    pilots: &Pilots,
    stft: &Stft,
    p_before: f64,
) -> Option<(Detection, Option<DataSoft>)> {
    // Coarse: every other offset (2 ms), every factor.
    let mut best: Option<(f64, usize, usize, usize)> = None;
    for k in (0..N_OFFSETS).step_by(2) {
        let fs = scaled_at(stft, y, k * OFFSET_STEP, layout.delta, &PITCH_FACTORS);
        for (i, f) in fs.iter().enumerate() {
            let (theta, z) = best_phase(&pilot_scan_frames(all_frames(f), pilots));
            if best.is_none_or(|b| z > b.0) {
                best = Some((z, k, theta, i));
            }
        }
    }
    let (_, k0, _, i) = best?;
    // Fine: the best factor at the best offset and its 1 ms neighbours.
    let sigma = [PITCH_FACTORS[i]];
    let mut fine: Option<(f64, usize, usize, Features)> = None;
    for k in [k0, (k0 + 1) % N_OFFSETS, (k0 + N_OFFSETS - 1) % N_OFFSETS] {
        let f = scaled_at(stft, y, k * OFFSET_STEP, layout.delta, &sigma).pop()?;
        let (theta, z) = best_phase(&pilot_scan_frames(all_frames(&f), pilots));
        if fine.as_ref().is_none_or(|b| z > b.0) {
            fine = Some((z, k, theta, f));
        }
    }
    let (z, k, theta, f) = fine?;
    let timing = FrameTiming {
        start_s: (k * OFFSET_STEP) as f64 / f64::from(FS),
        frame_s: N as f64 / f64::from(FS),
        scale: None,
    };
    let best = Best { f: &f, theta, z };
    decide_stage(best, layout, PITCH_HYP, p_before, timing, dur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_are_sixths_of_a_semitone() {
        let ks = (-7..0).chain(1..8);
        for (&f, k) in PITCH_FACTORS.iter().zip(ks) {
            let want = 2f64.powf(f64::from(k) / 72.0);
            assert!((f64::from(f) - want).abs() < 1e-6, "{f} vs 2^({k}/72)");
        }
        // ±1 semitone on the grid.
        assert!(PITCH_FACTORS.contains(&0.943_874_3));
        assert!(PITCH_FACTORS.contains(&1.059_463_1));
    }

    /// A spectrum scaled by σ read at σ gives the original's cells back
    /// (up to the interpolation of fractional bins).
    #[test]
    fn scaled_cells_undo_a_frequency_scaling() {
        let sigma = PITCH_FACTORS[12];
        // A smooth spectral envelope plus tones, and the same scaled by σ.
        let env = |f: f64| 1.0 + (f / 7.0).sin().powi(2) * 3.0 + (f / 23.0).cos().abs();
        let spec = |s: f64| -> Vec<Complex<f32>> {
            (0..N)
                .map(|k| {
                    let k = k.min(N - k) as f64;
                    Complex::new(env(k / s).sqrt() as f32, 0.0)
                })
                .collect()
        };
        let (orig, _, _) = cells(&spec(1.0));
        let (read, _, _) = cells_from_cum(&cum_power(&spec(f64::from(sigma))), sigma);
        let (naive, _, _) = cells(&spec(f64::from(sigma)));
        // log-power cells up to a constant (the scaled band is σ× wider)
        let off = |a: &[f32], b: &[f32]| -> f32 {
            let m = a.iter().zip(b).map(|(x, y)| x - y).sum::<f32>() / a.len() as f32;
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y - m).abs())
                .fold(0.0, f32::max)
        };
        let e_read = off(&read, &orig);
        let e_naive = off(&naive, &orig);
        assert!(e_read < 0.05, "scaled read deviates by {e_read}");
        assert!(e_naive > 4.0 * e_read, "naive {e_naive} vs scaled {e_read}");
        // σ = 1 is the plain read.
        let (one, _, _) = cells_from_cum(&cum_power(&spec(1.0)), 1.0);
        assert!(off(&one, &orig) < 1e-4);
    }
}
