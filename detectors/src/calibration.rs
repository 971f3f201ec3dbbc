//! Calibrated probabilities, evidence bands, and the per-file detection summary.
//!
//! A model's raw output is a logit (or a probability, turned into one). Platt scaling
//! (J. Platt, "Probabilistic outputs for support vector machines", 1999) maps it to a
//! calibrated probability `p = σ(a·logit + b)`, fitted on out-of-fold scores the model never
//! trained on. Two thresholds on `p`, set on real (non-synthetic) calibration media, split it
//! into bands:
//!
//! * `likely_synthetic`: `p ≥ threshold_likely_synthetic`, the level at which at most
//!   `fpr_target` (default 2 %) of the real calibration media scored;
//! * `inconclusive`: `threshold_inconclusive ≤ p < threshold_likely_synthetic`;
//! * `no_signal`: below, or input the model cannot judge (tiny images, silence, very short
//!   clips). `no_signal` is *not* evidence of authenticity: detectors miss new generators.

use serde::{Deserialize, Serialize};

/// Evidence band of a calibrated detector probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Nothing the detectors can stand behind (low score, or input unfit for detection).
    NoSignal,
    /// Between the thresholds: neither side.
    Inconclusive,
    /// At or above the threshold set at the stated false-positive rate.
    LikelySynthetic,
}

impl Band {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::NoSignal => "no_signal",
            Band::Inconclusive => "inconclusive",
            Band::LikelySynthetic => "likely_synthetic",
        }
    }
}

/// Calibration of one model, as stored in the registry (`[model.calibration]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// `platt` (the only method).
    pub method: String,
    /// Platt slope.
    pub a: f64,
    /// Platt intercept.
    pub b: f64,
    /// Calibrated probability at or above which the band is `likely_synthetic`.
    pub threshold_likely_synthetic: f64,
    /// Calibrated probability at or above which the band is at least `inconclusive`.
    pub threshold_inconclusive: f64,
    /// False-positive rate on real calibration media at `threshold_likely_synthetic`.
    pub fpr_target: f64,
    /// What the calibration was fitted on.
    #[serde(default)]
    pub fitted_on: String,
}

impl Calibration {
    /// Checks the parameters.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.method != "platt" {
            return Err(format!(
                "calibration.method `{}` is not supported (platt)",
                self.method
            ));
        }
        if !(self.a.is_finite() && self.b.is_finite()) {
            return Err("calibration.a and calibration.b must be finite".into());
        }
        let (hi, lo) = (self.threshold_likely_synthetic, self.threshold_inconclusive);
        if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
            return Err(
                "calibration thresholds must satisfy 0 <= threshold_inconclusive <= threshold_likely_synthetic <= 1"
                    .into(),
            );
        }
        if !(0.0..=1.0).contains(&self.fpr_target) {
            return Err("calibration.fpr_target must be in [0, 1]".into());
        }
        Ok(())
    }

    /// Calibrated probability of a logit.
    pub fn probability(&self, logit: f64) -> f64 {
        let z = self.a * logit + self.b;
        1.0 / (1.0 + (-z).exp())
    }

    /// Band of a calibrated probability.
    pub fn band(&self, p: f64) -> Band {
        if p >= self.threshold_likely_synthetic {
            Band::LikelySynthetic
        } else if p >= self.threshold_inconclusive {
            Band::Inconclusive
        } else {
            Band::NoSignal
        }
    }
}

/// Logit of a probability, clamped to `[1e-7, 1 − 1e-7]` first.
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-7, 1.0 - 1e-7);
    (p / (1.0 - p)).ln()
}

/// One model's calibrated result on one input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DetectorScore {
    /// Registry name of the model.
    pub model: String,
    /// Registry version of the model.
    pub version: String,
    /// Calibrated probability that the input is synthetic (Platt, see the registry).
    pub score: f32,
    /// The model's raw logit, averaged over crops or windows.
    #[serde(default)]
    pub logit: f32,
    /// Evidence band of `score`.
    #[serde(default = "no_signal")]
    pub band: Band,
    /// The `likely_synthetic` threshold on `score`.
    #[serde(default)]
    pub threshold: f32,
    /// Real-media false-positive rate that threshold was set at.
    #[serde(default)]
    pub fpr_target: f32,
}

fn no_signal() -> Band {
    Band::NoSignal
}

/// The detection summary of one file: `detection` in a verification report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Detection {
    /// Combined calibrated probability (the mean of the models'), absent when no model could
    /// judge the input.
    pub probability: Option<f32>,
    /// Combined band: `likely_synthetic` only when every model is in that band (each is
    /// calibrated at its own false-positive rate, so requiring all keeps the combined rate at
    /// most the smallest of them); `inconclusive` when any model reaches at least that band.
    pub band: Band,
    /// The strictest false-positive rate among the models' thresholds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fpr_target: Option<f32>,
    /// Why there is no probability (input too small, silent, too short, no model loaded).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    /// Per-model results.
    pub models: Vec<DetectorScore>,
}

impl Detection {
    /// No model judged the input, for `reason`.
    pub fn no_signal(reason: impl Into<String>) -> Self {
        Self {
            probability: None,
            band: Band::NoSignal,
            fpr_target: None,
            note: Some(reason.into()),
            models: Vec::new(),
        }
    }

    /// Combines per-model results (see the field docs for the rule).
    pub fn combine(models: Vec<DetectorScore>) -> Self {
        if models.is_empty() {
            return Self::no_signal("no detector model scores this media kind");
        }
        let n = models.len() as f32;
        let probability = models.iter().map(|m| m.score).sum::<f32>() / n;
        let band = if models.iter().all(|m| m.band == Band::LikelySynthetic) {
            Band::LikelySynthetic
        } else if models.iter().any(|m| m.band >= Band::Inconclusive) {
            Band::Inconclusive
        } else {
            Band::NoSignal
        };
        let fpr_target = models.iter().map(|m| m.fpr_target).reduce(f32::min);
        Self {
            probability: Some(probability),
            band,
            fpr_target,
            note: None,
            models,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calibration {
        Calibration {
            method: "platt".into(),
            a: 2.0,
            b: -1.0,
            threshold_likely_synthetic: 0.9,
            threshold_inconclusive: 0.5,
            fpr_target: 0.02,
            fitted_on: String::new(),
        }
    }

    fn score(p: f32, band: Band) -> DetectorScore {
        DetectorScore {
            model: "m".into(),
            version: "1".into(),
            score: p,
            logit: 0.0,
            band,
            threshold: 0.9,
            fpr_target: 0.02,
        }
    }

    #[test]
    fn platt_and_bands() {
        let c = cal();
        assert!((c.probability(0.5) - 0.5).abs() < 1e-12);
        assert!(c.probability(10.0) > 0.999 && c.probability(-10.0) < 0.001);
        assert_eq!(c.band(0.95), Band::LikelySynthetic);
        assert_eq!(c.band(0.9), Band::LikelySynthetic);
        assert_eq!(c.band(0.7), Band::Inconclusive);
        assert_eq!(c.band(0.2), Band::NoSignal);
        assert!((logit(c.probability(1.3)) * 0.5 + 0.5 - 1.3).abs() < 1e-6);
    }

    #[test]
    fn invalid_calibrations_are_refused() {
        let mut c = cal();
        c.threshold_inconclusive = 0.95;
        assert!(c.validate().is_err());
        let mut c = cal();
        c.method = "isotonic".into();
        assert!(c.validate().is_err());
        let mut c = cal();
        c.a = f64::NAN;
        assert!(c.validate().is_err());
        assert!(cal().validate().is_ok());
    }

    #[test]
    fn combination_needs_every_model_for_likely_synthetic() {
        let d = Detection::combine(vec![
            score(0.95, Band::LikelySynthetic),
            score(0.6, Band::Inconclusive),
        ]);
        assert_eq!(d.band, Band::Inconclusive);
        assert!((d.probability.unwrap_or(0.0) - 0.775).abs() < 1e-6);
        let d = Detection::combine(vec![score(0.95, Band::LikelySynthetic)]);
        assert_eq!(d.band, Band::LikelySynthetic);
        let d = Detection::combine(vec![]);
        assert_eq!((d.band, d.probability), (Band::NoSignal, None));
        assert!(d.note.is_some());
    }
}
