#!/usr/bin/env python3
"""Build Hallmark's baseline synthetic-media detectors as ONNX graphs.

Writes, into ``detectors/models/`` (or ``--out``):

* ``image-residual-v1.onnx``  image [N,3,256,256] f32 RGB in [0,1]  -> score [N,1]
* ``audio-spectral-v1.onnx``  audio [N,64000] f32 mono 16 kHz [-1,1] -> score [N,1]
* ``registry.toml``           model list with SHA-256 and preprocessing parameters
* ``golden.json``             expected scores for deterministic synthetic inputs
                              (checked by the Rust tests, tolerance 1e-4)

Both graphs are fixed feature extractors (hand-designed filters, no learned
convolution weights) followed by a logistic-regression head fitted with
scikit-learn on the labelled development corpus
(``/work/shared/corpus/detection``, see its README). Training features are
computed by running the feature sub-graph itself with onnxruntime, so training
and serving share exactly one implementation of the features.

Reproducible: fixed seeds, single-threaded onnxruntime/BLAS. Run from the repo
root:  python training/build_detectors.py   (see training/README.md).
"""

from __future__ import annotations

import os

# Single-threaded numerics => bit-for-bit reproducible fits on one machine.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import csv
import hashlib
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import soundfile as sf
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from scipy.signal import resample_poly
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold, train_test_split

SEED = 20240611
OPSET = 17
IR_VERSION = 9

IMAGE_SIZE = 256
JPEG_QUALITY = 90

SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 64_000  # 4 s
MAX_WINDOWS = 8
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_BINS = N_FFT // 2 + 1  # 201, 40 Hz resolution
N_BANDS = 24

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path("/work/shared/corpus/detection")


# --------------------------------------------------------------------------
# ONNX helpers
# --------------------------------------------------------------------------
class G:
    """Tiny graph builder: collects nodes and initializers, makes unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def _name(self, op: str) -> str:
        self._n += 1
        return f"{op.lower()}_{self._n}"

    def const(self, arr, name: str | None = None) -> str:
        arr = np.asarray(arr)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        name = name or self._name("c")
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or self._name(op)
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"n_{out}", **attrs))
        return out

    def model(self, inp: str, in_shape, out: str, out_shape, doc: str, version: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "hallmark",
            [helper.make_tensor_value_info(inp, TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)],
            initializer=self.inits,
        )
        m = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="hallmark-training",
            producer_version=version,
            doc_string=doc,
        )
        m.ir_version = IR_VERSION
        onnx.checker.check_model(m, full_check=True)
        return m


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_batched(sess: ort.InferenceSession, x: np.ndarray, batch: int = 16) -> np.ndarray:
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs, axis=0)


def add_head(g: G, feats: str, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float) -> str:
    """Standardise features and apply the logistic head -> `score` [N,1]."""
    z = g.op("Sub", [feats, g.const(mean.astype(np.float32), "feat_mean")])
    z = g.op("Div", [z, g.const(scale.astype(np.float32), "feat_scale")])
    logit = g.op(
        "Gemm",
        [z, g.const(coef.reshape(-1, 1).astype(np.float32), "head_w"), g.const(np.array([intercept], np.float32), "head_b")],
    )
    return g.op("Sigmoid", [logit], out="score")


# --------------------------------------------------------------------------
# Image graph
# --------------------------------------------------------------------------
def srm_kernels() -> tuple[list[str], np.ndarray]:
    """SRM-style fixed high-pass residual filters, each embedded in 5x5."""

    def emb(k):
        k = np.asarray(k, np.float64)
        out = np.zeros((5, 5))
        h, w = k.shape
        oy, ox = (5 - h) // 2, (5 - w) // 2
        out[oy : oy + h, ox : ox + w] = k
        return out

    ks = {
        "d1_h": emb([[0, -1, 1]]),
        "d1_v": emb([[0], [-1], [1]]),
        "d2_h": emb([[1, -2, 1]]) / 2,
        "d2_v": emb([[1], [-2], [1]]) / 2,
        "d3_h": emb([[-1, 3, -3, 1, 0]]) / 3,
        "d2_diag": emb([[1, 0, 0], [0, -2, 0], [0, 0, 1]]) / 2,
        "kb3": emb([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]) / 4,
        "kv5": emb(
            [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]]
        )
        / 12,
    }
    return list(ks), np.stack(list(ks.values()))


LUMA = np.array([0.299, 0.587, 0.114])


def image_features_graph(g: G, x: str) -> tuple[str, list[str]]:
    """Adds the image feature extractor; returns (features [N,F], feature names)."""
    names, ks = srm_kernels()
    w_luma = (LUMA[None, :, None, None] * ks[:, None, :, :]).astype(np.float32)  # [8,3,5,5]
    chroma_k = [("d2_h", ks[2]), ("d2_v", ks[3]), ("kb3", ks[6])]
    w_chroma = []
    chroma_names = []
    for cname, coeffs in (("rg", [1, -1, 0]), ("bg", [0, -1, 1])):
        for kname, k in chroma_k:
            w_chroma.append(np.asarray(coeffs, np.float64)[:, None, None] * k[None])
            chroma_names.append(f"{cname}_{kname}")
    w_chroma = np.stack(w_chroma).astype(np.float32)  # [6,3,5,5]

    wl = g.const(w_luma, "srm_luma")
    r_full = g.op("Conv", [x, wl], kernel_shape=[5, 5])  # valid conv: [N,8,252,252]
    half = g.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])  # [N,3,128,128]
    r_half = g.op("Conv", [half, wl], kernel_shape=[5, 5])  # [N,8,124,124]
    r_chroma = g.op("Conv", [x, g.const(w_chroma, "srm_chroma")], kernel_shape=[5, 5])  # [N,6,252,252]

    eps_a, eps_s = g.const(np.float32(1e-6)), g.const(np.float32(1e-10))
    eps_q, two = g.const(np.float32(1e-20)), g.const(np.float32(2.0))
    parts: list[str] = []
    fnames: list[str] = []
    for tag, r, rn in (("full", r_full, names), ("half", r_half, names), ("chroma", r_chroma, chroma_names)):
        a = g.op("GlobalAveragePool", [g.op("Abs", [r])])
        s2 = g.op("Mul", [r, r])
        s = g.op("GlobalAveragePool", [s2])
        q = g.op("GlobalAveragePool", [g.op("Mul", [s2, s2])])
        la = g.op("Log", [g.op("Add", [a, eps_a])])
        ls = g.op("Log", [g.op("Add", [s, eps_s])])
        lq = g.op("Log", [g.op("Add", [q, eps_q])])
        kurt = g.op("Sub", [lq, g.op("Mul", [ls, two])])
        parts += [la, ls, kurt]
        fnames += [f"{tag}_{n}_logabs" for n in rn] + [f"{tag}_{n}_logsq" for n in rn] + [f"{tag}_{n}_kurt" for n in rn]

    m = g.op("GlobalAveragePool", [x])
    m2 = g.op("GlobalAveragePool", [g.op("Mul", [x, x])])
    var = g.op("Relu", [g.op("Sub", [m2, g.op("Mul", [m, m])])])
    sd = g.op("Sqrt", [g.op("Add", [var, eps_s])])
    sat = g.op("Sub", [g.op("ReduceMax", [x], axes=[1], keepdims=1), g.op("ReduceMin", [x], axes=[1], keepdims=1)])
    satm = g.op("GlobalAveragePool", [sat])
    parts += [m, sd, satm]
    fnames += ["mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "mean_saturation"]

    cat = g.op("Concat", parts, axis=1)  # [N,F,1,1]
    return g.op("Flatten", [cat], axis=1, out="features"), fnames


def build_image_model(head=None) -> tuple[onnx.ModelProto, list[str]]:
    g = G()
    feats, fnames = image_features_graph(g, "image")
    shape_in = ["N", 3, IMAGE_SIZE, IMAGE_SIZE]
    doc = (
        "Hallmark image-residual-v1: SRM-style fixed high-pass residuals (luma at full and half "
        "scale, chroma), |r|/r^2/kurtosis global averages, colour statistics, logistic head. "
        "Input image [N,3,256,256] RGB float in [0,1]; output score [N,1] in (0,1), higher = "
        "more likely synthetic. Baseline quality only."
    )
    if head is None:
        return g.model("image", shape_in, feats, ["N", len(fnames)], doc, "1"), fnames
    out = add_head(g, feats, *head)
    return g.model("image", shape_in, out, ["N", 1], doc, "1"), fnames


# --------------------------------------------------------------------------
# Audio graph
# --------------------------------------------------------------------------
def band_matrix() -> np.ndarray:
    """[N_BINS, N_BANDS] averaging matrix over mel-spaced bands (DC bin excluded)."""
    hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1)  # noqa: E731
    mel = lambda f: 2595.0 * math.log10(1 + f / 700.0)  # noqa: E731
    edges_hz = [hz(m) for m in np.linspace(mel(40.0), mel(SAMPLE_RATE / 2), N_BANDS + 1)]
    bin_hz = SAMPLE_RATE / N_FFT
    edges = sorted({max(1, int(round(f / bin_hz))) for f in edges_hz})
    edges[-1] = N_BINS  # include Nyquist bin in the last band
    m = np.zeros((N_BINS, len(edges) - 1))
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        m[lo:hi, b] = 1.0 / (hi - lo)
    assert m.shape[1] == N_BANDS, f"band layout gave {m.shape[1]} bands"
    return m


def dft_kernels() -> np.ndarray:
    """[2*N_BINS, 1, N_FFT]: periodic-Hann-windowed cos rows then -sin rows."""
    n = np.arange(N_FFT)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
    k = np.arange(N_BINS)[:, None]
    cos = np.cos(2 * np.pi * k * n / N_FFT) * win
    sin = -np.sin(2 * np.pi * k * n / N_FFT) * win
    return np.concatenate([cos, sin])[:, None, :].astype(np.float32)


def audio_features_graph(g: G, x: str) -> tuple[str, list[str]]:
    x3 = g.op("Unsqueeze", [x, g.const(np.array([1], np.int64))])  # [N,1,64000]
    spec = g.op("Conv", [x3, g.const(dft_kernels(), "dft_kernels")], kernel_shape=[N_FFT], strides=[HOP])
    ax = g.const(np.array([1], np.int64))
    re = g.op("Slice", [spec, g.const(np.array([0], np.int64)), g.const(np.array([N_BINS], np.int64)), ax])
    im = g.op("Slice", [spec, g.const(np.array([N_BINS], np.int64)), g.const(np.array([2 * N_BINS], np.int64)), ax])
    p = g.op("Add", [g.op("Mul", [re, re]), g.op("Mul", [im, im])])  # power [N,201,T]
    pt = g.op("Transpose", [p], perm=[0, 2, 1])  # [N,T,201]
    bands = g.const(band_matrix().astype(np.float32), "band_matrix")
    eps = g.const(np.float32(1e-10))

    # Long-term average spectrum (linear mean over frames): padding/silence only rescale it.
    ltas_bins = g.op("ReduceMean", [pt], axes=[1], keepdims=0)  # [N,201]
    log_bins = g.op("Log", [g.op("Add", [ltas_bins, eps])])
    ltas_b = g.op("Log", [g.op("Add", [g.op("MatMul", [ltas_bins, bands]), eps])])  # [N,B]
    shape_b = g.op("Sub", [ltas_b, g.op("ReduceMean", [ltas_b], axes=[1], keepdims=1)])  # gain-normalised
    flat_b = g.op("Sub", [ltas_b, g.op("MatMul", [log_bins, bands])])  # in-band spectral fine structure

    # Temporal dynamics per band, invariant to gain and zero padding:
    # power-weighted mean of log power minus log of power-weighted mean power.
    bp = g.op("MatMul", [pt, bands])  # [N,T,B]
    m1 = g.op("ReduceMean", [bp], axes=[1], keepdims=0)
    m2 = g.op("ReduceMean", [g.op("Mul", [bp, bp])], axes=[1], keepdims=0)
    mpl = g.op("ReduceMean", [g.op("Mul", [bp, g.op("Log", [g.op("Add", [bp, eps])])])], axes=[1], keepdims=0)
    den = g.op("Add", [m1, eps])
    wlog = g.op("Div", [mpl, den])
    wp = g.op("Div", [m2, den])
    dyn = g.op("Sub", [wlog, g.op("Log", [g.op("Add", [wp, eps])])])

    feats = g.op("Concat", [shape_b, flat_b, dyn], axis=1, out="features")
    fnames = [f"{k}_b{b:02d}" for k in ("ltas", "flatness", "dynamics") for b in range(N_BANDS)]
    return feats, fnames


def build_audio_model(head=None) -> tuple[onnx.ModelProto, list[str]]:
    g = G()
    feats, fnames = audio_features_graph(g, "audio")
    doc = (
        "Hallmark audio-spectral-v1: 25 ms Hann frames / 10 ms hop DFT as Conv1d, power spectrum, "
        "24 mel-spaced bands: gain-normalised long-term spectrum, in-band flatness, power-weighted "
        "temporal dynamics; logistic head. Input audio [N,64000] mono 16 kHz in [-1,1]; output "
        "score [N,1] in (0,1), higher = more likely synthetic. Baseline quality only."
    )
    if head is None:
        return g.model("audio", ["N", WINDOW_SAMPLES], feats, ["N", len(fnames)], doc, "1"), fnames
    out = add_head(g, feats, *head)
    return g.model("audio", ["N", WINDOW_SAMPLES], out, ["N", 1], doc, "1"), fnames


# --------------------------------------------------------------------------
# Data loading / preprocessing (mirrors the Rust service)
# --------------------------------------------------------------------------
@dataclass
class Item:
    file: str
    label: int  # 1 = synthetic
    fmt: str
    generator: str
    origin: str


def read_labels(corpus: Path, modality: str) -> list[Item]:
    with open(corpus / "LABELS.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = []
    for r in rows:
        if r["modality"] != modality:
            continue
        if r["label"] not in ("real", "synthetic"):
            raise SystemExit(f"unexpected label {r['label']!r} for {r['file']}")
        out.append(Item(r["file"], int(r["label"] == "synthetic"), r["format"], r["generator"], r["origin_repo"]))
    return out


def load_image(path: Path, reencode: bool) -> np.ndarray:
    """decode -> RGB -> resize 256x256 (bilinear/triangle) [-> JPEG q90 -> decode] -> [3,H,W] f32 in [0,1]."""
    with Image.open(path) as im:
        im.load()
        rgb = im.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    if reencode:
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=JPEG_QUALITY)
        buf.seek(0)
        with Image.open(buf) as j:
            rgb = j.convert("RGB")
    return (np.asarray(rgb, dtype=np.float32) / np.float32(255.0)).transpose(2, 0, 1).copy()


def audio_windows(x: np.ndarray) -> np.ndarray:
    """Same window policy as the Rust service: <=8 evenly spread 4 s windows, zero-padded."""
    n = len(x)
    if n <= WINDOW_SAMPLES:
        starts = [0]
    else:
        count = min(math.ceil(n / WINDOW_SAMPLES), MAX_WINDOWS)
        starts = [(i * (n - WINDOW_SAMPLES)) // (count - 1) for i in range(count)]
    out = np.zeros((len(starts), WINDOW_SAMPLES), np.float32)
    for i, s in enumerate(starts):
        seg = x[s : s + WINDOW_SAMPLES]
        out[i, : len(seg)] = seg
    return out


def load_audio(path: Path) -> np.ndarray:
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = data.mean(axis=1).astype(np.float64)
    if sr != SAMPLE_RATE:
        gcd = math.gcd(sr, SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // gcd, sr // gcd)
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------
# Fitting and evaluation
# --------------------------------------------------------------------------
def fit_head(x: np.ndarray, y: np.ndarray, groups_weight: np.ndarray | None = None):
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    clf = LogisticRegressionCV(
        Cs=np.logspace(-3, 1, 9),
        cv=StratifiedKFold(5, shuffle=True, random_state=SEED),
        scoring="roc_auc",
        max_iter=5000,
        l1_ratios=(0.0,),  # pure L2
        use_legacy_attributes=False,
    )
    clf.fit(z, y, sample_weight=groups_weight)
    return clf, mean, scale


def metrics(y: np.ndarray, s: np.ndarray) -> dict:
    if len(set(y.tolist())) < 2:
        return {"n_real": int((y == 0).sum()), "n_synthetic": int((y == 1).sum())}
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fpr - fnr)))
    return {
        "n_real": int((y == 0).sum()),
        "n_synthetic": int((y == 1).sum()),
        "auc": float(roc_auc_score(y, s)),
        "eer": float((fpr[i] + fnr[i]) / 2),
        "tpr_at_fpr1": float(tpr[fpr <= 0.01].max()),
    }


def eer_threshold(y: np.ndarray, s: np.ndarray) -> float:
    fpr, tpr, thr = roc_curve(y, s)
    i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return float(thr[i])


def report(title: str, y: np.ndarray, s: np.ndarray, fmts: list[str], thr: float) -> list[str]:
    lines = [f"#### {title}", "", "| subset | n real | n synthetic | AUC | EER | TPR@FPR=1% | flagged at EER thr |", "|---|---|---|---|---|---|---|"]

    def row(name, mask):
        m = metrics(y[mask], s[mask])
        flagged = float((s[mask] >= thr).mean()) if mask.any() else float("nan")
        f = lambda k: f"{m[k]:.3f}" if k in m else "n/a"  # noqa: E731
        lines.append(f"| {name} | {m['n_real']} | {m['n_synthetic']} | {f('auc')} | {f('eer')} | {f('tpr_at_fpr1')} | {flagged:.2f} |")

    fm = np.array(fmts)
    row("all", np.ones(len(y), bool))
    for fmt in sorted(set(fmts)):
        row(f"format={fmt}", fm == fmt)
    lines.append("")
    for ln in lines:
        print(ln)
    return lines


def check_parity(model: onnx.ModelProto, x_in: np.ndarray, expected: np.ndarray, what: str) -> float:
    got = run_batched(session(model), x_in)[:, 0].astype(np.float64)
    diff = float(np.max(np.abs(got - expected))) if len(got) else 0.0
    print(f"[{what}] max |onnx - sklearn| = {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit(f"{what}: ONNX output deviates from sklearn probability by {diff}")
    return diff


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------
# Golden inputs (re-created bit-exactly by the Rust tests)
# --------------------------------------------------------------------------
def golden_image_u8() -> np.ndarray:
    """[256,256,3] u8: v = (3x + 5y + 71c + (x*y mod 17)) mod 256."""
    y, x, c = np.meshgrid(np.arange(256), np.arange(256), np.arange(3), indexing="ij")
    return ((3 * x + 5 * y + 71 * c + (x * y) % 17) % 256).astype(np.uint8)


def lcg_noise() -> np.ndarray:
    """[64000] f64 in [-1,1): s_0 = 12345, s_{n+1} = (1103515245 s_n + 12345) mod 2^31, value 2 s_{n+1}/2^31 - 1."""
    state = 12345
    noise = np.empty(WINDOW_SAMPLES, np.float64)
    for i in range(WINDOW_SAMPLES):
        state = (state * 1103515245 + 12345) % (1 << 31)
        noise[i] = state / float(1 << 31) * 2.0 - 1.0
    return noise


def golden_audio() -> np.ndarray:
    """[64000] f32: 0.4*sin(2*pi*440*n/16000) + 0.2*noise, computed in f64."""
    n = np.arange(WINDOW_SAMPLES, dtype=np.float64)
    return (0.4 * np.sin(2 * np.pi * 440.0 * n / SAMPLE_RATE) + 0.2 * lcg_noise()).astype(np.float32)


def golden_voiced() -> np.ndarray:
    """[64000] f32, a crude voiced-speech stand-in that scores mid-range (computed in f64):
    0.3 * sum_{k=1..30, 105k < 8000} k^-1.6 sin(2 pi 105 k n / 16000) * (0.5 - 0.5 cos(2 pi 5 n / 16000))^1.3
    + 1.5e-4 * noise."""
    n = np.arange(WINDOW_SAMPLES, dtype=np.float64)
    h = np.zeros(WINDOW_SAMPLES)
    for k in range(1, 31):
        if 105.0 * k < SAMPLE_RATE / 2:
            h += k**-1.6 * np.sin(2 * np.pi * 105.0 * k * n / SAMPLE_RATE)
    env = (0.5 - 0.5 * np.cos(2 * np.pi * 5.0 * n / SAMPLE_RATE)) ** 1.3
    return (0.3 * h * env + 1.5e-4 * lcg_noise()).astype(np.float32)


# --------------------------------------------------------------------------
def build_image(corpus: Path, out: Path, readme: list[str]) -> dict:
    items = read_labels(corpus, "image")
    y = np.array([it.label for it in items])
    strat = [f"{it.label}|{it.fmt}" for it in items]
    idx_tr, idx_te = train_test_split(np.arange(len(items)), test_size=0.3, random_state=SEED, stratify=strat)

    feat_model, fnames = build_image_model()
    fsess = session(feat_model)
    print(f"[image] {len(items)} files, {len(fnames)} features; extracting ...", flush=True)
    x_re = np.stack([load_image(corpus / it.file, reencode=True) for it in items])
    x_raw = np.stack([load_image(corpus / it.file, reencode=False) for it in items])
    f_re = run_batched(fsess, x_re).astype(np.float64)
    f_raw = run_batched(fsess, x_raw).astype(np.float64)

    clf, mean, scale = fit_head(f_re[idx_tr], y[idx_tr])
    print(f"[image] C={float(np.ravel(clf.C_)[0]):.4g}")
    head = (mean, scale, clf.coef_[0], float(clf.intercept_[0]))
    model, _ = build_image_model(head)

    p_re = clf.predict_proba((f_re - mean) / scale)[:, 1]
    p_raw = clf.predict_proba((f_raw - mean) / scale)[:, 1]
    check_parity(model, x_re[idx_te], p_re[idx_te], "image")

    fmts = [items[i].fmt for i in idx_te]
    thr = eer_threshold(y[idx_te], p_re[idx_te])
    readme += report("image-residual-v1, held-out 30%, training preprocessing (resize 256 + JPEG q90 re-encode)", y[idx_te], p_re[idx_te], fmts, thr)
    readme += report("image-residual-v1, held-out 30%, service preprocessing (resize 256, pixels as decoded)", y[idx_te], p_raw[idx_te], fmts, thr)
    ctrl = np.array([items[i].origin == "necenzurat/ai-image-filter" for i in idx_te])
    readme += report("image-residual-v1, held-out, best-controlled subset (necenzurat: 600x800 JPEG both classes), re-encoded", y[idx_te][ctrl], p_re[idx_te][ctrl], [fmts[i] for i in np.flatnonzero(ctrl)], thr)

    path = out / "image-residual-v1.onnx"
    onnx.save(model, str(path))
    golden = golden_image_u8()
    gx = (golden.astype(np.float32) / np.float32(255.0)).transpose(2, 0, 1)[None].copy()
    gscore = float(session(model).run(None, {"image": gx})[0][0, 0])
    flat = np.full((1, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32(128.0) / np.float32(255.0), np.float32)
    fscore = float(session(model).run(None, {"image": flat})[0][0, 0])
    return {
        "path": path,
        "golden": {
            "image_pattern_u8": {
                "input": "256x256 RGB8, v[y][x][c] = (3x + 5y + 71c + (x*y mod 17)) mod 256, scaled by 1/255",
                "score": gscore,
            },
            "image_flat_gray_128": {"input": "256x256 RGB8, all 128", "score": fscore},
        },
        "n_train": len(idx_tr),
        "n_test": len(idx_te),
    }


def build_audio(corpus: Path, out: Path, readme: list[str]) -> dict:
    items = read_labels(corpus, "speech")
    y = np.array([it.label for it in items])
    strat = [f"{it.label}|{it.fmt}" for it in items]
    idx_tr, idx_te = train_test_split(np.arange(len(items)), test_size=0.3, random_state=SEED, stratify=strat)

    feat_model, fnames = build_audio_model()
    fsess = session(feat_model)
    print(f"[audio] {len(items)} clips, {len(fnames)} features; extracting ...", flush=True)
    wins, owner = [], []
    for i, it in enumerate(items):
        w = audio_windows(load_audio(corpus / it.file))
        wins.append(w)
        owner += [i] * len(w)
    xw = np.concatenate(wins)
    owner = np.array(owner)
    fw = run_batched(fsess, xw, batch=8).astype(np.float64)

    tr_mask = np.isin(owner, idx_tr)
    counts = np.bincount(owner, minlength=len(items))
    weight = 1.0 / counts[owner]  # each clip weighs the same regardless of its length
    clf, mean, scale = fit_head(fw[tr_mask], y[owner][tr_mask], weight[tr_mask])
    print(f"[audio] C={float(np.ravel(clf.C_)[0]):.4g}, windows={len(xw)}")
    head = (mean, scale, clf.coef_[0], float(clf.intercept_[0]))
    model, _ = build_audio_model(head)

    pw = clf.predict_proba((fw - mean) / scale)[:, 1]
    te_mask = np.isin(owner, idx_te)
    check_parity(model, xw[te_mask], pw[te_mask], "audio")
    clip_score = np.array([pw[owner == i].mean() for i in range(len(items))])

    fmts = [items[i].fmt for i in idx_te]
    thr = eer_threshold(y[idx_te], clip_score[idx_te])
    readme += report("audio-spectral-v1, held-out 30% of clips (clip score = mean of window scores)", y[idx_te], clip_score[idx_te], fmts, thr)
    tort = np.array([items[i].origin == "neonbjb/tortoise-tts" for i in idx_te])
    readme += report("audio-spectral-v1, held-out, Tortoise subset (clones vs the real reference voices)", y[idx_te][tort], clip_score[idx_te][tort], [fmts[i] for i in np.flatnonzero(tort)], thr)

    path = out / "audio-spectral-v1.onnx"
    onnx.save(model, str(path))
    ga = golden_audio()[None]
    gscore = float(session(model).run(None, {"audio": ga})[0][0, 0])
    vscore = float(session(model).run(None, {"audio": golden_voiced()[None]})[0][0, 0])
    zscore = float(session(model).run(None, {"audio": np.zeros((1, WINDOW_SAMPLES), np.float32)})[0][0, 0])
    return {
        "path": path,
        "golden": {
            "audio_sine_noise": {
                "input": "64000 samples @16 kHz mono: 0.4*sin(2*pi*440*n/16000) + 0.2*(2*s_n/2^31 - 1), "
                "s_0 = 12345, s_{n+1} = (1103515245*s_n + 12345) mod 2^31 (first noise value uses s_1), computed in f64, cast to f32",
                "score": gscore,
            },
            "audio_silence": {"input": "64000 zeros", "score": zscore},
            "audio_voiced": {
                "input": "64000 samples @16 kHz: 0.3 * sum_{k=1..30, 105k<8000} k^-1.6 sin(2 pi 105 k n/16000) "
                "* (0.5 - 0.5 cos(2 pi 5 n/16000))^1.3 + 1.5e-4 * noise (noise as in audio_sine_noise), f64 then f32",
                "score": vscore,
            },
        },
        "n_train": len(idx_tr),
        "n_test": len(idx_te),
    }


def write_registry(out: Path, img: dict, aud: dict) -> None:
    def q(s: str) -> str:
        return json.dumps(s)  # TOML basic strings accept JSON string escapes for this ASCII text

    corpus_note = (
        "Hallmark development corpus (shared/corpus/detection): {n} files; real = {real}; synthetic = {syn}. "
        "Stratified 70/30 split (seed {seed}); research-use data, not shipped."
    )
    blocks = [
        "# Generated by training/build_detectors.py -- do not edit by hand; re-run the script.",
        "# Paths in `file` are relative to this registry file.",
        "schema = 1",
        "",
    ]
    entries = [
        dict(
            name="image-residual",
            version="1",
            kind="image",
            path=img["path"],
            input="image",
            shape=["-1", "3", str(IMAGE_SIZE), str(IMAGE_SIZE)],
            pre=f"image_size = {IMAGE_SIZE}\nresize_filter = \"triangle\"\ntraining_jpeg_quality = {JPEG_QUALITY}",
            desc="SRM-style fixed high-pass residual statistics (luma full/half scale, chroma) + colour statistics, logistic-regression head. Input RGB float32 in [0,1], NCHW 256x256. Score in (0,1): higher = more likely synthetic. Baseline; do not use alone for decisions.",
            data=corpus_note.format(
                n=img["n_train"] + img["n_test"],
                real="ImageNet/IRCNN/author photos",
                syn="SD1.5, StyleGAN3, ChatGPT, Gemini",
                seed=SEED,
            )
            + " Training images were resized to 256x256 and JPEG q90 re-encoded (both classes) to blunt the container confound.",
        ),
        dict(
            name="audio-spectral",
            version="1",
            kind="audio",
            path=aud["path"],
            input="audio",
            shape=["-1", str(WINDOW_SAMPLES)],
            pre=f"sample_rate = {SAMPLE_RATE}\nwindow_samples = {WINDOW_SAMPLES}\nmax_windows = {MAX_WINDOWS}",
            desc="Hann-windowed DFT (25 ms / 10 ms) as Conv1d, log band spectrum shape, in-band flatness and power-weighted temporal dynamics over 24 mel bands, logistic-regression head. Input mono 16 kHz float32 in [-1,1], 4 s windows. Score in (0,1): higher = more likely synthetic. Baseline; do not use alone for decisions.",
            data=corpus_note.format(
                n=aud["n_train"] + aud["n_test"],
                real="LJSpeech, VCTK, Tortoise reference voices",
                syn="VITS, Glow-TTS, Tacotron2 (+HiFi-GAN), Tortoise",
                seed=SEED,
            )
            + " Clips were mixed to mono and resampled to 16 kHz; window scores averaged per clip.",
        ),
    ]
    for e in entries:
        blocks += [
            "[[model]]",
            f"name = {q(e['name'])}",
            f"version = {q(e['version'])}",
            f"kind = {q(e['kind'])}",
            f"file = {q(e['path'].name)}",
            f"sha256 = {q(sha256(e['path']))}",
            f"input = {q(e['input'])}",
            f"input_shape = [{', '.join(e['shape'])}]",
            'output = "score"',
            f"description = {q(e['desc'])}",
            f"training_data = {q(e['data'])}",
            "",
            "[model.preprocess]",
            e["pre"],
            "",
        ]
    (out / "registry.toml").write_text("\n".join(blocks))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--out", type=Path, default=REPO / "detectors" / "models")
    ap.add_argument("--metrics-md", type=Path, default=None, help="also write the evaluation tables here")
    args = ap.parse_args()
    if not (args.corpus / "LABELS.tsv").is_file():
        print(f"corpus not found: {args.corpus}/LABELS.tsv", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    np.random.seed(SEED)

    readme: list[str] = []
    img = build_image(args.corpus, args.out, readme)
    aud = build_audio(args.corpus, args.out, readme)
    write_registry(args.out, img, aud)
    golden = {"tolerance": 1e-4, **img["golden"], **aud["golden"]}
    (args.out / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    for p in (img["path"], aud["path"]):
        print(f"{p.relative_to(REPO) if p.is_relative_to(REPO) else p}: {p.stat().st_size} bytes, sha256 {sha256(p)}")
    if args.metrics_md:
        args.metrics_md.write_text("\n".join(readme) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
