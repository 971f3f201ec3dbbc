#!/usr/bin/env bash
# Validates an OpenAPI document (JSON or YAML file) with openapi-spec-validator from PyPI,
# an implementation independent of the generator (utoipa). The venv lives in
# .runtime/openapi-venv and is created on first use (pinned in requirements.txt); later runs
# need no network.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 FILE" >&2; exit 2; }
venv="$repo/.runtime/openapi-venv"
if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$repo/scripts/openapi/requirements.txt"
fi
exec "$venv/bin/openapi-spec-validator" "$1"
