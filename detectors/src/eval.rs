//! Detector evaluation metrics, the same definitions as `training/evalkit.py`, so `hallmark
//! detectors eval` reproduces the model cards' numbers.
//!
//! Scores are "higher = more synthetic"; labels are `true` for synthetic.
//! * ROC AUC = the Mann–Whitney U statistic / (n₁·n₀), ties counted ½.
//! * 95 % CI: stratified percentile bootstrap (each class resampled with replacement),
//!   `draws` draws from a fixed-seed PCG-style generator.
//! * EER: on the empirical ROC, the point minimising |FPR − FNR|, reported as their mean.
//! * TPR at FPR ≤ t: the largest TPR over thresholds whose FPR ≤ t (step ROC).
//! * Platt scaling fit (for `hallmark detectors calibrate`): logistic regression of the label
//!   on the logit by Newton's method.

use serde::Serialize;

/// Metrics of one stratum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Synthetic items.
    pub n_synthetic: usize,
    /// Real items.
    pub n_real: usize,
    /// ROC AUC (None when a class is missing).
    pub auc: Option<f64>,
    /// Bootstrap 95 % CI of the AUC.
    pub auc_ci: Option<(f64, f64)>,
    /// Equal error rate.
    pub eer: Option<f64>,
    /// TPR at FPR ≤ 1 %.
    pub tpr_at_1pct_fpr: Option<f64>,
    /// TPR at FPR ≤ 5 %.
    pub tpr_at_5pct_fpr: Option<f64>,
}

/// ROC AUC by the rank-sum statistic.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let pos: Vec<f64> = pick(scores, labels, true);
    let neg: Vec<f64> = pick(scores, labels, false);
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut neg_sorted = neg.clone();
    neg_sorted.sort_by(f64::total_cmp);
    let mut u = 0.0;
    for p in &pos {
        let below = neg_sorted.partition_point(|n| n < p);
        let equal = neg_sorted[below..].partition_point(|n| n <= p);
        u += below as f64 + 0.5 * equal as f64;
    }
    Some(u / (pos.len() as f64 * neg.len() as f64))
}

fn pick(scores: &[f64], labels: &[bool], want: bool) -> Vec<f64> {
    scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l == want)
        .map(|(s, _)| *s)
        .collect()
}

/// (FPR, TPR) points of the empirical ROC, thresholds from high to low, starting at (0, 0).
pub fn roc(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let n1 = labels.iter().filter(|&&l| l).count().max(1) as f64;
    let n0 = labels.iter().filter(|&&l| !l).count().max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut out = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == s {
            if labels[idx[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        out.push((fp / n0, tp / n1));
    }
    out
}

/// Largest TPR with FPR ≤ `target`.
pub fn tpr_at_fpr(scores: &[f64], labels: &[bool], target: f64) -> f64 {
    roc(scores, labels)
        .iter()
        .filter(|(f, _)| *f <= target + 1e-12)
        .map(|(_, t)| *t)
        .fold(0.0, f64::max)
}

/// Equal error rate.
pub fn eer(scores: &[f64], labels: &[bool]) -> f64 {
    roc(scores, labels)
        .iter()
        .min_by(|a, b| {
            (a.0 - (1.0 - a.1))
                .abs()
                .total_cmp(&(b.0 - (1.0 - b.1)).abs())
        })
        .map(|(f, t)| (f + (1.0 - t)) / 2.0)
        .unwrap_or(0.5)
}

/// A small deterministic generator (SplitMix64) for the bootstrap.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Stratified percentile bootstrap 95 % CI of the AUC.
pub fn auc_ci(scores: &[f64], labels: &[bool], draws: usize, seed: u64) -> Option<(f64, f64)> {
    let pos = pick(scores, labels, true);
    let neg = pick(scores, labels, false);
    if pos.is_empty() || neg.is_empty() || draws == 0 {
        return None;
    }
    let mut rng = SplitMix(seed);
    let mut aucs = Vec::with_capacity(draws);
    let mut s = Vec::with_capacity(pos.len() + neg.len());
    let mut l = Vec::with_capacity(pos.len() + neg.len());
    for _ in 0..draws {
        s.clear();
        l.clear();
        for _ in 0..pos.len() {
            s.push(pos[rng.below(pos.len())]);
            l.push(true);
        }
        for _ in 0..neg.len() {
            s.push(neg[rng.below(neg.len())]);
            l.push(false);
        }
        aucs.extend(auc(&s, &l));
    }
    aucs.sort_by(f64::total_cmp);
    let at = |q: f64| aucs[((aucs.len() - 1) as f64 * q).round() as usize];
    Some((at(0.025), at(0.975)))
}

/// All metrics of one stratum.
pub fn metrics(scores: &[f64], labels: &[bool]) -> Metrics {
    let n_synthetic = labels.iter().filter(|&&l| l).count();
    let n_real = labels.len() - n_synthetic;
    let both = n_synthetic > 0 && n_real > 0;
    Metrics {
        n_synthetic,
        n_real,
        auc: auc(scores, labels),
        auc_ci: auc_ci(scores, labels, 2000, 20_261_207),
        eer: both.then(|| eer(scores, labels)),
        tpr_at_1pct_fpr: both.then(|| tpr_at_fpr(scores, labels, 0.01)),
        tpr_at_5pct_fpr: both.then(|| tpr_at_fpr(scores, labels, 0.05)),
    }
}

/// Platt scaling: `(a, b)` maximising the likelihood of `p = σ(a·x + b)`, by Newton's
/// method with a tiny ridge (1e-6) for separable data.
pub fn fit_platt(logits: &[f64], labels: &[bool]) -> (f64, f64) {
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-6, 0.0, 1e-6);
        for (&x, &y) in logits.iter().zip(labels) {
            let p = 1.0 / (1.0 + (-(a * x + b)).exp());
            let r = p - f64::from(u8::from(y));
            let w = (p * (1.0 - p)).max(1e-12);
            ga += r * x;
            gb += r;
            haa += w * x * x;
            hab += w * x;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-10 {
            break;
        }
    }
    (a, b)
}

/// The smallest threshold at which at most `floor(fpr · n)` of `real` probabilities reach it.
pub fn threshold_at_fpr(real: &[f64], fpr: f64) -> f64 {
    let mut s = real.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let k = (fpr * s.len() as f64).floor() as usize;
    match s.get(k) {
        Some(v) => f64::from(next_up(*v as f32)),
        None => 0.0,
    }
}

fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    let bits = x.to_bits();
    let next = if x == 0.0 {
        1
    } else if x > 0.0 {
        bits + 1
    } else {
        bits - 1
    };
    f32::from_bits(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_known_values() {
        let s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let l = [true, true, false, true, false, false];
        // pairs: 9; correctly ordered 8 → 8/9
        assert!((auc(&s, &l).unwrap_or(0.0) - 8.0 / 9.0).abs() < 1e-12);
        assert!((auc(&[0.5, 0.5], &[true, false]).unwrap_or(0.0) - 0.5).abs() < 1e-12);
        assert!(auc(&[0.5], &[true]).is_none());
    }

    #[test]
    fn tpr_eer_and_ci() {
        let s: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let l: Vec<bool> = (0..100).map(|i| i >= 50).collect();
        assert_eq!(tpr_at_fpr(&s, &l, 0.01), 1.0);
        assert!(eer(&s, &l) < 1e-12);
        let (lo, hi) = auc_ci(&s, &l, 200, 1).unwrap_or((0.0, 0.0));
        assert!(lo <= 1.0 && hi >= lo);
        let inv: Vec<f64> = s.iter().map(|v| -v).collect();
        assert_eq!(tpr_at_fpr(&inv, &l, 0.05), 0.0);
    }

    #[test]
    fn platt_recovers_a_known_map() {
        // Labels drawn deterministically from p = σ(2x − 1).
        let mut rng = SplitMix(7);
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let x = (rng.next() % 10_000) as f64 / 1000.0 - 5.0;
            let p = 1.0 / (1.0 + (-(2.0 * x - 1.0)).exp());
            let u = (rng.next() % 1_000_000) as f64 / 1e6;
            xs.push(x);
            ys.push(u < p);
        }
        let (a, b) = fit_platt(&xs, &ys);
        assert!((a - 2.0).abs() < 0.15 && (b + 1.0).abs() < 0.15, "{a} {b}");
    }

    #[test]
    fn threshold_keeps_the_rate() {
        let real: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let t = threshold_at_fpr(&real, 0.02);
        assert_eq!(real.iter().filter(|&&p| p >= t).count(), 2);
    }
}
