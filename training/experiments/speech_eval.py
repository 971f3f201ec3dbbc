"""LOGO evaluation of candidate feature sets on the probe cache (see speech_probe.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import detect_audio as da  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
D = 384
H = 132


def blk(kind: int, layer: int) -> np.ndarray:
    """kind 0 mean-all, 1 std-all, 2 mean-active, 3 std-active; layer 0-3 blocks, 4 final LN."""
    s = H + kind * 5 * D + layer * D
    return np.arange(s, s + D)


def run(name, cols, fs, y, srcs, folds, c=0.05, chans=None, skip=()):
    chans = chans or list(fs)
    idx = np.arange(len(y))
    keep = ~np.isin(srcs, list(skip))
    X = {ch: np.stack([f[:, cols].mean(axis=0) for f in fs[ch]]) for ch in fs}

    def fit(tr):
        x = np.concatenate([X[ch][tr] for ch in chans])
        yy = np.concatenate([y[tr] for _ in chans])
        w = np.where(yy == 1, 0.5 / (yy == 1).sum(), 0.5 / (yy == 0).sum()) * len(yy)
        sc = StandardScaler().fit(x)
        return sc, LogisticRegression(C=c, max_iter=3000).fit(sc.transform(x), yy, sample_weight=w)

    def sc_(m, ch, te):
        return m[1].decision_function(m[0].transform(X[ch][te]))

    logo = np.full(len(y), np.nan)
    per = {}
    gens = sorted({s for s, l in zip(srcs, y) if l == 1 and s not in skip})
    for g in gens:
        for k in range(da.N_FOLDS):
            tr = idx[keep & (((y == 1) & (srcs != g)) | ((y == 0) & (folds != k)))]
            m = fit(tr)
            te = idx[(y == 1) & (srcs == g) & (folds == k)]
            if len(te):
                logo[te] = sc_(m, "orig", te)
    oof = np.full(len(y), np.nan)
    for k in range(da.N_FOLDS):
        m = fit(idx[keep & (folds != k)])
        te = idx[folds == k]
        oof[te] = sc_(m, "orig", te)
    pooled = np.where(y == 1, logo, oof)
    msk = keep
    auc = roc_auc_score(y[msk], pooled[msk])
    for g in gens:
        mm = (y == 0) | (srcs == g)
        per[g] = roc_auc_score(y[mm], pooled[mm])
    oof_auc = roc_auc_score(y[msk], oof[msk])
    print(f"{name:38s} pooled {auc:.3f}  oof {oof_auc:.3f}  " + " ".join(f"{g[:6]}={v:.2f}" for g, v in per.items()), flush=True)
    return auc


def corpus():
    """(probe features by channel, labels, sources, grouped real folds) as detect_audio.py."""
    its = da.items()
    fs = np.load(REPO / ".venv" / "speech_probe.npz", allow_pickle=True)["feats"].item()
    y = np.array([i.label for i in its])
    srcs = np.array([i.source for i in its])
    groups = sorted({i.group for i in its})
    rng = np.random.default_rng(da.SEED)
    fold_of = {g: int(f) for g, f in zip(groups, rng.permutation(len(groups)) % da.N_FOLDS)}
    return fs, y, srcs, np.array([fold_of[i.group] for i in its])


def main():
    fs, y, srcs, folds = corpus()
    hand = np.arange(H)
    v2 = np.concatenate([hand, blk(0, 4), blk(1, 4), blk(0, 1)])
    sets = {
        "v2 (hand+final m/s+b1 mean)": v2,
        "hand only": hand,
        "spectral72 only": np.arange(72),
        "lfcc only": np.arange(72, 132),
        "final m/s all": np.concatenate([blk(0, 4), blk(1, 4)]),
        "final m/s active": np.concatenate([blk(2, 4), blk(3, 4)]),
    }
    for l in range(5):
        sets[f"layer{l} m/s active"] = np.concatenate([blk(2, l), blk(3, l)])
        sets[f"layer{l} m/s all"] = np.concatenate([blk(0, l), blk(1, l)])
    sets["hand + all layers m/s active"] = np.concatenate([hand] + [blk(k, l) for k in (2, 3) for l in range(5)])
    sets["hand + layer0-1 active"] = np.concatenate([hand] + [blk(k, l) for k in (2, 3) for l in (0, 1)])
    sets["L01 active"] = np.concatenate([blk(k, l) for k in (2, 3) for l in (0, 1)])
    sets["L01 all"] = np.concatenate([blk(k, l) for k in (0, 1) for l in (0, 1)])
    sets["L0 all + L1 active"] = np.concatenate([blk(0, 0), blk(1, 0), blk(2, 1), blk(3, 1)])
    sets["L012 active"] = np.concatenate([blk(k, l) for k in (2, 3) for l in (0, 1, 2)])
    sets["L1 active + lfcc"] = np.concatenate([np.arange(72, 132), blk(2, 1), blk(3, 1)])
    sets["L1 mean active"] = blk(2, 1)
    sets["L1 std active"] = blk(3, 1)
    only = sys.argv[1:]
    for n, cols in sets.items():
        if only and not any(o in n for o in only):
            continue
        run(n, cols, fs, y, srcs, folds)
    if only:
        return
    print("-- without ComfyUI-music (non-speech)")
    for n in ("v2 (hand+final m/s+b1 mean)", "hand + all layers m/s active"):
        run(n, sets[n], fs, y, srcs, folds, skip=("ComfyUI-music",))


if __name__ == "__main__":
    main()
