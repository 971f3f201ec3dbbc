#!/usr/bin/env bash
# Text-to-speech speed and memory (issue 21, "what it must show" 3).
#
#   nice cargo build --release --bin hallmark
#   nice cargo build --release -p hallmark-generators --example tts_bench
#   scripts/bench/tts.sh target/release/hallmark [target/release/examples/tts_bench]
#
# 1. End to end, through `hallmark generate` (synthesis + watermark + read-back + C2PA signing
#    + store, one process per text, SQLite in a temporary data directory, detectors off):
#    for a ~100-character text (two sentences: a clip must carry the audio watermark, 5 s),
#    an 800-character paragraph and a 5,000-character text, the wall-clock
#    time, the real-time factor (audio seconds / wall seconds, "x real time", process start
#    and model load included) and the peak RSS (`/usr/bin/time -v`).
# 2. Synthesis only (when the tts_bench example binary is given): see
#    generators/examples/tts_bench.rs.
# Reference: aim >= 5x real time on the 2-core development machine; peak RSS bounded for the
# 5,000-character text.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${1:?usage: scripts/bench/tts.sh HALLMARK_BINARY [TTS_BENCH_BINARY]}"
EXAMPLE="${2:-}"
VOICE="${VOICE:-en_US-joe-medium}"
[ -x "$BIN" ] || { echo "no executable $BIN" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

WORK="$(mktemp -d /tmp/hallmark-tts-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export HALLMARK__STORAGE__DATA_DIR="$WORK/data"
export HALLMARK__DETECTORS__ENABLED=false
export HALLMARK_LOG=warn
cd "$ROOT"

# Harvard sentences, lists 3 and 4 (as in generators/examples/tts_bench.rs).
python3 - "$WORK" <<'PY'
import sys
s = ["The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
     "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
     "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
     "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
     "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
     "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
     "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
     "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
     "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
     "The meal was cooked before the bell rang.", "What joy there is in living."]
def text(n):
    out = ""
    i = 0
    while len(out) + len(s[i % 20]) + 1 <= n:
        out = (out + " " + s[i % 20]).strip()
        i += 1
    return out
for name, n in (("short", 100), ("paragraph", 800), ("5000chars", 5000)):
    open(f"{sys.argv[1]}/{name}.txt", "w").write(text(n))
PY

# Warm the data directory (identity, keys, database) once, outside the timings.
"$BIN" generate --generator "$VOICE" --text "Warming up: the first request builds the data directory." -o "$WORK/warm.wav" >/dev/null 2>&1

printf 'text\tchars\taudio_s\twall_s\trtf_x\tpeak_rss_mb\n'
for name in short paragraph 5000chars; do
    /usr/bin/time -v -o "$WORK/$name.time" \
        "$BIN" generate --generator "$VOICE" --text-file "$WORK/$name.txt" -o "$WORK/$name.wav" >/dev/null
    python3 - "$WORK/$name" "$name" <<'PY'
import re, sys, wave
base, name = sys.argv[1], sys.argv[2]
t = open(base + ".time").read()
wall = t.split("Elapsed (wall clock) time (h:mm:ss or m:ss):")[1].split("\n")[0].strip().split(":")
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
with wave.open(base + ".wav") as w:
    audio = w.getnframes() / w.getframerate()
chars = len(open(base + ".txt").read())
print(f"{name}\t{chars}\t{audio:.1f}\t{wall:.2f}\t{audio / wall:.2f}\t{rss:.0f}")
PY
done
echo "end to end (hallmark generate: process start, model load, synthesis, watermark, signing, store)"

if [ -n "$EXAMPLE" ]; then
    echo
    echo "synthesis only ($EXAMPLE):"
    "$EXAMPLE" --voice "$VOICE"
fi
echo "reference: aim >= 5x real time (rtf_x) on the 2-core dev machine (issue 21)"
