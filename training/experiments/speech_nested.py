"""Nested leave-one-generator-out: for each held-out generator, the feature set is chosen by an
inner LOGO over the remaining generators only (so the choice never sees the held-out one), then
fitted and scored. Gives an estimate free of the feature-set selection made in speech_eval.py."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speech_eval as se  # noqa: E402

da = se.da


def main():
    fs, y, srcs, folds = se.corpus()
    hand = np.arange(se.H)
    cands = {
        "v2": np.concatenate([hand, se.blk(0, 4), se.blk(1, 4), se.blk(0, 1)]),
        "final": np.concatenate([se.blk(2, 4), se.blk(3, 4)]),
    }
    for l in range(3):
        cands[f"L{l}"] = np.concatenate([se.blk(2, l), se.blk(3, l)])
    X = {n: {ch: np.stack([f[:, c].mean(axis=0) for f in fs[ch]]) for ch in fs} for n, c in cands.items()}
    idx = np.arange(len(y))

    def fit(n, tr):
        x = np.concatenate([X[n][ch][tr] for ch in fs])
        yy = np.concatenate([y[tr] for _ in fs])
        w = np.where(yy == 1, 0.5 / (yy == 1).sum(), 0.5 / (yy == 0).sum()) * len(yy)
        sc = StandardScaler().fit(x)
        return sc, LogisticRegression(C=0.05, max_iter=3000).fit(sc.transform(x), yy, sample_weight=w)

    def dec(m, n, te):
        return m[1].decision_function(m[0].transform(X[n]["orig"][te]))

    gens = sorted({s for s, l in zip(srcs, y) if l == 1})
    logo = np.full(len(y), np.nan)
    for g in gens:
        k_in = (gens.index(g)) % da.N_FOLDS  # inner real hold-out fold, != outer usage below
        best, best_auc = None, -1
        for n in cands:
            s = np.full(len(y), np.nan)
            for h in gens:
                if h == g:
                    continue
                tr = idx[(((y == 1) & (srcs != g) & (srcs != h)) | ((y == 0) & (folds != k_in)))]
                te = idx[(y == 1) & (srcs == h)]
                s[te] = dec(fit(n, tr), n, te)
            tr = idx[(((y == 1) & (srcs != g)) | ((y == 0) & (folds != k_in)))]
            ter = idx[(y == 0) & (folds == k_in)]
            s[ter] = dec(fit(n, tr), n, ter)
            m = (srcs != g) & ~np.isnan(s)
            a = roc_auc_score(y[m], s[m])
            if a > best_auc:
                best, best_auc = n, a
        for k in range(da.N_FOLDS):
            tr = idx[((y == 1) & (srcs != g)) | ((y == 0) & (folds != k))]
            te = idx[(y == 1) & (srcs == g) & (folds == k)]
            if len(te):
                logo[te] = dec(fit(best, tr), best, te)
        print(f"held out {g:14s}: inner choice {best} (inner AUC {best_auc:.3f})", flush=True)
    # Real scores: OOF with the set chosen most often would be selection too; use L1 (the deployed
    # choice) and also report each candidate's real OOF so the pooled number can be read per choice.
    for n in ("L1", "L0", "final"):
        oof = np.full(len(y), np.nan)
        for k in range(da.N_FOLDS):
            oof[folds == k] = dec(fit(n, idx[folds != k]), n, idx[folds == k])
        pooled = np.where(y == 1, logo, oof)
        print(f"nested pooled AUC with real OOF from {n}: {roc_auc_score(y, pooled):.3f}")


if __name__ == "__main__":
    main()
