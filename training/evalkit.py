"""Evaluation and calibration helpers shared by the detector training scripts.

Metrics (all on held-out / out-of-fold scores, label 1 = synthetic):
  * ROC AUC with a percentile bootstrap 95 % CI (stratified resampling of each class, B draws).
  * EER: the point where FPR = FNR on the empirical ROC.
  * TPR at a fixed FPR: the largest TPR whose FPR <= the target (conservative, step ROC).
  * Platt scaling (Platt 1999): p = sigmoid(a * logit + b), fitted by logistic regression on
    out-of-fold logits.
  * Expected calibration error (Guo et al. 2017): 10 equal-width bins, weighted |acc - conf|.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve

RNG_SEED = 20261207


def auc(y: np.ndarray, s: np.ndarray) -> float:
    if len(set(y.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def auc_ci(y: np.ndarray, s: np.ndarray, b: int = 2000, seed: int = RNG_SEED) -> tuple[float, float, float]:
    """AUC and its stratified percentile bootstrap 95 % CI."""
    a = auc(y, s)
    if np.isnan(a):
        return a, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    draws = []
    for _ in range(b):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        draws.append(roc_auc_score(y[idx], s[idx]))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return a, float(lo), float(hi)


def eer(y: np.ndarray, s: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fpr - fnr)))
    return float((fpr[i] + fnr[i]) / 2)


def tpr_at_fpr(y: np.ndarray, s: np.ndarray, target: float) -> float:
    fpr, tpr, _ = roc_curve(y, s)
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return float(max(0.0, c - h)), float(min(1.0, c + h))


def fit_platt(logit: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: returns (a, b) with p = sigmoid(a * logit + b)."""
    lr = LogisticRegression(C=1e4, max_iter=1000)
    lr.fit(logit.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for i in range(bins):
        m = (p >= edges[i]) & ((p < edges[i + 1]) if i < bins - 1 else (p <= 1))
        if m.any():
            total += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(total)


def threshold_at_fpr(p_real: np.ndarray, fpr: float) -> float:
    """Smallest threshold t such that the fraction of reals with p >= t is <= fpr.

    Returned as a value just above the (k+1)-th largest real score, so that at most
    floor(fpr * n) reals reach it."""
    s = np.sort(p_real)[::-1]
    k = int(np.floor(fpr * len(s)))
    if k >= len(s):
        return 0.0
    return float(np.nextafter(np.float32(s[k]), np.float32(np.inf)))


def metric_row(name: str, y: np.ndarray, s: np.ndarray) -> str:
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    if n1 == 0 or n0 == 0:
        return f"| {name} | {n1} | {n0} | – | – | – | – |"
    a, lo, hi = auc_ci(y, s)
    return (
        f"| {name} | {n1} | {n0} | {a:.3f} [{lo:.3f}, {hi:.3f}] | {eer(y, s):.3f} | "
        f"{tpr_at_fpr(y, s, 0.01):.3f} | {tpr_at_fpr(y, s, 0.05):.3f} |"
    )


METRIC_HEADER = [
    "| stratum | synthetic | real | AUC [95 % CI] | EER | TPR@1 %FPR | TPR@5 %FPR |",
    "|---|---|---|---|---|---|---|",
]


def plot_roc(path, curves: list[tuple[str, np.ndarray, np.ndarray]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    for name, y, s in curves:
        if len(set(y.tolist())) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(y, s):.2f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false-positive rate (real flagged)")
    ax.set_ylabel("true-positive rate (synthetic flagged)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None, "Creation Time": None})
    plt.close(fig)


def plot_reliability(path, y: np.ndarray, p: np.ndarray, title: str, bins: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.linspace(0, 1, bins + 1)
    xs, ys, ns = [], [], []
    for i in range(bins):
        m = (p >= edges[i]) & ((p < edges[i + 1]) if i < bins - 1 else (p <= 1))
        if m.any():
            xs.append(p[m].mean())
            ys.append(y[m].mean())
            ns.append(int(m.sum()))
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.plot(xs, ys, "o-")
    for x, yy, n in zip(xs, ys, ns):
        ax.annotate(str(n), (x, yy), fontsize=6)
    ax.set_xlabel("predicted probability synthetic (out-of-fold, calibrated)")
    ax.set_ylabel("observed fraction synthetic")
    ax.set_title(f"{title}; ECE {ece(y, p, bins):.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None, "Creation Time": None})
    plt.close(fig)
