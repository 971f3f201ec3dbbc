#!/usr/bin/env bash
# Signs images and audio with the hallmark CLI and checks every output in the reference C2PA
# reader (c2pa-python from PyPI, pinned in requirements.txt). Uses a real photo, speech clip and
# MP3 from ../shared/corpus when present, otherwise fixtures generated here.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
bin="${HALLMARK_BIN:-$repo/target/debug/hallmark}"
[ -x "$bin" ] || { echo "missing $bin: run 'cargo build --bins' first" >&2; exit 1; }
venv="$repo/.runtime/interop-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import c2pa, numpy, PIL" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/interop/requirements.txt
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HALLMARK__STORAGE__DATA_DIR="$work/data" HALLMARK_LOG=error
unset DATABASE_URL REDIS_URL

corpus="${HALLMARK_CORPUS:-$repo/../shared/corpus}/media"
if [ -d "$corpus" ]; then
  photo="$(ls "$corpus"/images/real/*.jpg | head -n 1)"
  png="$(ls "$corpus"/images/real/*.png | head -n 1)"
  # The longest clips: the watermark needs several seconds of audio.
  wav="$(ls -S "$corpus"/audio/real/*.wav | head -n 1)"
  mp3="$(ls -S "$corpus"/audio/*/*.mp3 | head -n 1)"
else
  "$venv/bin/python" - "$work" <<'PY'
import sys, wave, numpy as np
from PIL import Image
w = sys.argv[1]
rng = np.random.default_rng(1)
y, x = np.mgrid[0:480, 0:640]
img = np.stack([120 + 80*np.sin(x/37.0), 100 + 60*np.cos(y/23.0), 90 + 40*np.sin((x+y)/51.0)], -1)
img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
Image.fromarray(img).save(f"{w}/photo.jpg", quality=92)
Image.fromarray(img).save(f"{w}/photo.png")
sr = 22050; t = np.arange(sr*8)/sr
sig = 0.3*np.sin(2*np.pi*140*t)*np.sin(np.pi*t*3)**2 + 0.02*rng.normal(size=t.size)
with wave.open(f"{w}/speech.wav", "wb") as f:
    f.setnchannels(1); f.setsampwidth(2); f.setframerate(sr)
    f.writeframes((np.clip(sig, -1, 1)*32767).astype("<i2").tobytes())
PY
  photo="$work/photo.jpg"; png="$work/photo.png"; wav="$work/speech.wav"
  lame --quiet -b 128 "$wav" "$work/speech.mp3"; mp3="$work/speech.mp3"
fi

inputs=("$photo" "$png" "$wav" "$mp3")
# A C2PA-signed original: its manifest must survive as a parentOf ingredient.
signed_input="${HALLMARK_CORPUS:-$repo/../shared/corpus}/c2pa/jpeg/ai-es256.jpg"
[ -f "$signed_input" ] && inputs+=("$signed_input")
pairs=()
for f in "${inputs[@]}"; do
  ext="${f##*.}"
  out="$work/signed-$(basename "${f%.*}").$ext"
  "$bin" sign "$f" -o "$out" --generator interop-test --model interop-model --model-version 1.0 >/dev/null
  pairs+=("$f" "$out")
done
"$venv/bin/python" scripts/interop/check_reference.py "${pairs[@]}"
