#!/usr/bin/env bash
# Install Hallmark under a prefix, in the layout the binary looks for next to itself:
#   PREFIX/bin/hallmark
#   PREFIX/share/hallmark/detectors/models/   registry.toml + every file it references
#   PREFIX/share/hallmark/generators/models/  registry.toml + every file it references
#   PREFIX/lib/                               ONNX Runtime (libonnxruntime.so.<version>, providers)
# The installed binary then works from any directory with no environment variables; its data
# (database, keys, certificates) goes to the per-user directory ($XDG_DATA_HOME/hallmark or
# ~/.local/share/hallmark) unless HALLMARK__STORAGE__DATA_DIR says otherwise.
#
# Usage: scripts/install.sh [--bin PATH] PREFIX      (default binary: target/release/hallmark)
# `make install PREFIX=DIR` builds the release binary, fetches what is missing, and runs this.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$REPO/target/release/hallmark"
ORT_LIB="libonnxruntime.so.1.31.1"
if [[ "${1:-}" == "--bin" ]]; then
    BIN="$2"
    shift 2
fi
if [[ $# -ne 1 ]]; then
    echo "usage: scripts/install.sh [--bin PATH] PREFIX" >&2
    exit 2
fi
PREFIX="$1"

fail() { echo "install.sh: $*" >&2; exit 1; }
[[ -x "$BIN" ]] || fail "no hallmark binary at $BIN (build it first: cargo build --release --bin hallmark)"
ORT="$REPO/.runtime/onnxruntime"
[[ -s "$ORT/$ORT_LIB" ]] || fail "ONNX Runtime is missing at $ORT/$ORT_LIB (run scripts/fetch-onnxruntime.sh)"

install -d "$PREFIX/bin" "$PREFIX/lib"
install -m 0755 "$BIN" "$PREFIX/bin/hallmark.tmp.$$"
mv -f "$PREFIX/bin/hallmark.tmp.$$" "$PREFIX/bin/hallmark"
for f in "$ORT"/libonnxruntime*; do
    if [[ -L "$f" ]]; then
        ln -sfn "$(readlink "$f")" "$PREFIX/lib/$(basename "$f")"
    else
        install -m 0644 "$f" "$PREFIX/lib/$(basename "$f")"
    fi
done

for reg in detectors/models generators/models; do
    src="$REPO/$reg"
    dest="$PREFIX/share/hallmark/$reg"
    install -d "$dest"
    install -m 0644 "$src/registry.toml" "$dest/registry.toml"
    # Every `file = "…"` of the registry (models and backbones), relative to the registry.
    while IFS= read -r f; do
        [[ -n "$f" ]] || continue
        if [[ ! -s "$src/$f" ]]; then
            # Voices are optional: the service lists a voice without its files as unavailable.
            if [[ "$f" == voices/* ]]; then
                echo "install.sh: warning: $reg/$f is missing (run scripts/fetch-models.sh); that voice will be unavailable" >&2
                continue
            fi
            fail "$reg/$f is referenced by $reg/registry.toml but missing (run scripts/fetch-models.sh)"
        fi
        install -d "$(dirname "$dest/$f")"
        install -m 0644 "$src/$f" "$dest/$f"   # follows symlinks: the installed copy is a file
    done < <(sed -n 's/^[[:space:]]*\(file\|config\)[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\2/p' "$src/registry.toml")
done

echo "installed $PREFIX/bin/hallmark (models: $PREFIX/share/hallmark, ONNX Runtime: $PREFIX/lib)"
