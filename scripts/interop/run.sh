#!/usr/bin/env bash
# Interop matrix: signs JPEG, PNG, WebP, WAV, MP3 and M4A (and a C2PA-signed original) with the
# hallmark CLI under every signing mode -- ES256, ES384, Ed25519 and ES256 + RFC 3161 time-stamp
# (a local OpenSSL TSA) -- and checks every output in the reference C2PA reader (c2pa-python
# from PyPI, pinned in requirements.txt). Uses a real photo, speech clip and MP3 from
# ../shared/corpus when present, otherwise fixtures generated here. Prints a mode x format
# table; exits non-zero on any failure.
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

# WebP and M4A inputs are derived from the PNG and WAV (the corpus has none).
"$venv/bin/python" -c "import sys; from PIL import Image; Image.open(sys.argv[1]).convert('RGB').save(sys.argv[2], lossless=True)" "$png" "$work/photo.webp"
ffmpeg -hide_banner -loglevel error -y -i "$wav" -c:a aac -b:a 160k "$work/speech.m4a"
inputs=("$photo" "$png" "$work/photo.webp" "$wav" "$mp3" "$work/speech.m4a")
# A C2PA-signed original: its manifest must survive as a parentOf ingredient.
signed_input="${HALLMARK_CORPUS:-$repo/../shared/corpus}/c2pa/jpeg/ai-es256.jpg"
if [ ! -f "$signed_input" ]; then
  # No corpus: Hallmark's own signed JPEG is the signed original.
  "$bin" sign "$photo" -o "$work/parent.jpg" --model parent-model >/dev/null
  signed_input="$work/parent.jpg"
fi
inputs+=("$signed_input")

# Local RFC 3161 TSA for the time-stamped mode.
"$venv/bin/python" scripts/interop/tsa.py "$work/tsa" &
tsa_pid=$!
trap 'kill $tsa_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do [ -f "$work/tsa/port" ] && break; sleep 0.1; done
tsa_url="http://127.0.0.1:$(cat "$work/tsa/port")/tsa"

status=0
for mode in es256 es384 ed25519 es256-tsa; do
  alg="${mode%-tsa}"
  "$bin" certs dev --alg "$alg" --dir "$work/certs-$alg" --organization "Interop $alg" >/dev/null
  export HALLMARK__SIGNING__CHAIN_PATH="$work/certs-$alg/signing-chain.pem"
  export HALLMARK__SIGNING__KEY_PATH="$work/certs-$alg/signing-key.pem"
  export HALLMARK__STORAGE__DATA_DIR="$work/data-$mode"
  expect=(--expect-alg "$alg")
  if [ "$mode" = es256-tsa ]; then
    export HALLMARK__SIGNING__TSA_URL="$tsa_url"
    expect+=(--expect-time-stamp)
  else
    unset HALLMARK__SIGNING__TSA_URL
  fi
  pairs=()
  for f in "${inputs[@]}"; do
    ext="${f##*.}"
    out="$work/$mode/signed-$(basename "${f%.*}").$ext"
    mkdir -p "$work/$mode"
    "$bin" sign "$f" -o "$out" --generator interop-test --model interop-model --model-version 1.0 \
      --training-mining ai_training=notAllowed >/dev/null
    pairs+=("$f" "$out")
  done
  "$venv/bin/python" scripts/interop/check_reference.py --mode "$mode" "${expect[@]}" "${pairs[@]}" \
    | tee -a "$work/results.txt" || status=1
done
"$venv/bin/python" scripts/interop/check_reference.py --table "$work/results.txt" || status=1

# Speech Hallmark generated itself (issue 21): validates in the reference reader, names the
# voice and its model hash, and records the text's SHA-256 (not the text).
unset HALLMARK__SIGNING__CHAIN_PATH HALLMARK__SIGNING__KEY_PATH HALLMARK__SIGNING__TSA_URL
export HALLMARK__STORAGE__DATA_DIR="$work/data-generate"
voice_sha="$(sed -n '/name = "en_US-joe-medium"/,/^sha256/s/^sha256 = "\(.*\)"/\1/p' generators/models/registry.toml)"
text="Interop check: this sentence was synthesised and signed by Hallmark."
"$bin" generate --generator en_US-joe-medium --text "$text" -o "$work/generated.wav" >/dev/null
"$bin" generate --generator en_US-joe-medium --text "$text" -o "$work/generated.mp3" >/dev/null
"$venv/bin/python" scripts/interop/check_generated.py --generator en_US-joe-medium \
  --model-sha256 "$voice_sha" --text "$text" "$work/generated.wav" "$work/generated.mp3" || status=1

# The reference reader's verdicts on the C2PA corpus must match Hallmark's, file by file.
c2pa_corpus="${HALLMARK_CORPUS:-$repo/../shared/corpus}/c2pa"
if [ -f "$c2pa_corpus/ORACLE.json" ]; then
  unset HALLMARK__SIGNING__CHAIN_PATH HALLMARK__SIGNING__KEY_PATH HALLMARK__SIGNING__TSA_URL
  "$venv/bin/python" scripts/interop/corpus_compare.py "$bin" "$c2pa_corpus" || status=1
else
  echo "no ../shared/corpus/c2pa: corpus comparison skipped (the signing matrix above ran)"
fi
exit $status
