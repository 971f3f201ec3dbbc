#!/bin/sh
# Python venv for the invisible-watermark baseline of the robustness harness
# (watermark/examples/bench.rs). Lives under .runtime/ (gitignored).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.runtime/wm-baseline"
python3 -m venv "$venv"
# --no-deps: invisible-watermark declares torch/onnxruntime for its RivaGAN method,
# which the harness does not use; requirements.txt pins everything dwtDct/dwtDctSvd need.
"$venv/bin/pip" install --no-deps -r "$root/watermark/bench/baseline/requirements.txt"
