#!/usr/bin/env bash
# Fetch the ONNX Runtime shared library used by hallmark-detectors.
#
# Source: the official PyPI wheel `onnxruntime==1.31.1` (CPU build), downloaded
# with pip; the shared library is unpacked into $REPO/.runtime/onnxruntime/
# (git-ignored). Idempotent: exits 0 at once if the library is already there.
# Prints the absolute path of libonnxruntime.so.<version> on success.
#
# Environment:
#   PYTHON             python interpreter with pip (default: python3)
#   ORT_VERSION        wheel version (default: 1.31.1; the crate is built for it)
#   HALLMARK_ORT_DIR   destination directory (default: $REPO/.runtime/onnxruntime)
#   --gpu              fetch the CUDA build (`onnxruntime-gpu` wheel) into
#                      $REPO/.runtime/onnxruntime-gpu/ instead; set
#                      detectors.onnxruntime to its library and detectors.provider = "cuda".
#                      It needs CUDA 12 + cuDNN 9 shared libraries on the loader path
#                      (see detectors/README.md "Execution providers").
set -euo pipefail

PACKAGE="onnxruntime"
SUBDIR="onnxruntime"
if [[ "${1:-}" == "--gpu" ]]; then
    PACKAGE="onnxruntime-gpu"
    SUBDIR="onnxruntime-gpu"
fi

ORT_VERSION="${ORT_VERSION:-1.31.1}"
PYTHON="${PYTHON:-python3}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${HALLMARK_ORT_DIR:-$REPO/.runtime/$SUBDIR}"
LIB="libonnxruntime.so.${ORT_VERSION}"

if [[ -s "$DEST/$LIB" ]]; then
    echo "$DEST/$LIB"
    exit 0
fi

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64 | Linux-aarch64) ;;
    *)
        echo "fetch-onnxruntime.sh: only Linux x86_64/aarch64 wheels are handled; got $(uname -s)-$(uname -m)." >&2
        echo "Install ONNX Runtime ${ORT_VERSION} yourself and point DetectorPoolConfig.onnxruntime_path at the library." >&2
        exit 1
        ;;
esac

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "fetch-onnxruntime.sh: '$PYTHON' not found. Install Python 3 with pip (or set PYTHON=/path/to/python)." >&2
    exit 1
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    echo "fetch-onnxruntime.sh: '$PYTHON' has no pip module." >&2
    echo "Install it (Debian/Ubuntu: apt-get install python3-pip; or: $PYTHON -m ensurepip --upgrade)," >&2
    echo "or set PYTHON to an interpreter that has pip, then re-run this script." >&2
    exit 1
fi
if ! command -v unzip >/dev/null 2>&1 && ! "$PYTHON" -c 'import zipfile' >/dev/null 2>&1; then
    echo "fetch-onnxruntime.sh: need either 'unzip' or Python's zipfile module." >&2
    exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "fetch-onnxruntime.sh: downloading ${PACKAGE}==${ORT_VERSION} wheel from PyPI ..." >&2
"$PYTHON" -m pip download "${PACKAGE}==${ORT_VERSION}" --no-deps --only-binary=:all: \
    --disable-pip-version-check -q -d "$TMP" >&2

WHEEL="$(find "$TMP" -maxdepth 1 -name 'onnxruntime*.whl' | head -n 1)"
if [[ -z "$WHEEL" ]]; then
    echo "fetch-onnxruntime.sh: pip did not produce an onnxruntime wheel in $TMP." >&2
    exit 1
fi

# Extract into a staging dir, then move atomically so a half-written library is
# never mistaken for a complete one by the idempotency check above.
STAGE="$TMP/stage"
mkdir -p "$STAGE"
"$PYTHON" - "$WHEEL" "$STAGE" "$LIB" <<'PY'
import sys, zipfile, os, shutil
wheel, stage, lib = sys.argv[1:4]
wanted = {f"onnxruntime/capi/{lib}": lib,
          "onnxruntime/capi/libonnxruntime_providers_shared.so": "libonnxruntime_providers_shared.so",
          "onnxruntime/capi/libonnxruntime_providers_cuda.so": "libonnxruntime_providers_cuda.so"}
found = set()
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name in wanted:
            with z.open(name) as src, open(os.path.join(stage, wanted[name]), "wb") as dst:
                shutil.copyfileobj(src, dst)
            found.add(name)
if f"onnxruntime/capi/{lib}" not in found:
    sys.exit(f"fetch-onnxruntime.sh: {lib} not found inside {os.path.basename(wheel)}")
PY

mkdir -p "$DEST"
for f in "$STAGE"/*; do
    name="$(basename "$f")"
    mv -f "$f" "$DEST/.$name.tmp"
    mv -f "$DEST/.$name.tmp" "$DEST/$name"
done
# Convenience symlink for tools that look for the unversioned name.
ln -sfn "$LIB" "$DEST/libonnxruntime.so"

echo "$DEST/$LIB"
