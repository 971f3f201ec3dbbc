"""Probe: which Whisper layers and which pooling carry speech-synthesis signal that transfers to
held-out generators. Extracts per window: spectral+LFCC statistics (as detect_audio.py) and the
Whisper tiny.en block outputs pooled over all positions and over active (non-silent, non-padding)
positions. Cache: .venv/speech_probe.npz."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import build_detectors as bd  # noqa: E402
import detect_audio as da  # noqa: E402
import whisper_encoder as we  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def graph():
    g = bd.G()
    f1, _ = bd.audio_features_graph(g, "audio")
    f2, _ = da.lfcc_graph(g, "audio")
    hand = g.op("Concat", [f1, f2], axis=1, out="hand")
    final, outs = we.encoder_graph(g, da.whisper_weights(), we.log_mel_graph(g, "audio"), da.WIN // we.HOP)
    layers = g.op("Concat", [*outs, final], axis=2, out="layers")  # [N,200,5*384]
    gr = helper.make_graph(g.nodes, "probe", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["N", da.WIN])],
                           [helper.make_tensor_value_info("hand", TensorProto.FLOAT, ["N", 132]),
                            helper.make_tensor_value_info("layers", TensorProto.FLOAT, ["N", 200, 5 * 384])],
                           initializer=g.inits)
    m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", bd.OPSET)])
    m.ir_version = bd.IR_VERSION
    return m


def active_mask(w: np.ndarray) -> np.ndarray:
    """[N,64000] -> [N,200] bool: 20 ms frames within 40 dB of the window's loudest and above -70 dBFS."""
    fr = w.reshape(w.shape[0], 200, 320)
    e = 10 * np.log10((fr.astype(np.float64) ** 2).mean(axis=2) + 1e-12)
    return (e > e.max(axis=1, keepdims=True) - 40) & (e > -70)


def pool(layers: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[N,200,C], [N,200] -> [N, 4*C]: mean, std over all positions; mean, std over active ones."""
    m_all = layers.mean(axis=1)
    s_all = layers.std(axis=1)
    w = mask[..., None].astype(np.float32)
    cnt = np.maximum(w.sum(axis=1), 1)
    m_act = (layers * w).sum(axis=1) / cnt
    s_act = np.sqrt(((layers - m_act[:, None]) ** 2 * w).sum(axis=1) / cnt + 1e-6)
    return np.concatenate([m_all, s_all, m_act, s_act], axis=1).astype(np.float32)


def main():
    its = da.items()
    cache = REPO / ".venv" / "speech_probe.npz"
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(graph().SerializeToString(), so, providers=["CPUExecutionProvider"])
    feats = {ch: [] for ch in da.CHANNELS}
    for n, it in enumerate(its):
        for ch in da.CHANNELS:
            try:
                x = da.decode(it.path, ch)
            except Exception:
                x = da.decode(it.path, "orig")
            w = bd.audio_windows(x)
            hand, layers = sess.run(None, {"audio": w})
            feats[ch].append(np.concatenate([hand, pool(layers, active_mask(w))], axis=1))
        if n % 10 == 0:
            print(f"{n}/{len(its)}", file=sys.stderr, flush=True)
    np.savez_compressed(cache, files=np.array([str(i.path) for i in its]), feats=np.array(feats, dtype=object))


if __name__ == "__main__":
    main()
