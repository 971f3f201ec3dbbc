#!/usr/bin/env bash
# Bounded soak of a release Hallmark server on PostgreSQL + Redis (issue 18, "must show" 5):
# mixed traffic at a fixed rate (default 20 req/s for 1800 s): sign, verify of signed,
# unsigned and hostile files (hostile ones must get a 4xx, but for `report_*` ones, whose
# right answer is a report on the bytes present: 201), and decisions with an
# Idempotency-Key. Every INTERVAL s it prints the requests, errors and the server's resident
# memory (and with its media workers); at the end, one RESULT line with the error count and
# the RSS range after the warm-up.
#
#   nice cargo build --release --bin hallmark        # once; or HALLMARK_BIN=/path/to/hallmark
#   scripts/bench/soak.sh [SECONDS] [RATE]           # defaults 1800 20
#
# Environment: HALLMARK_TEST_PG_URL (admin URL), HALLMARK_TEST_REDIS_URL, SOAK_INTERVAL (30),
# SOAK_WARMUP (120 s: RSS before it is not compared).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DURATION="${1:-1800}"
RATE="${2:-20}"
BIN="${HALLMARK_BIN:-$ROOT/target/release/hallmark}"
PG_ADMIN="${HALLMARK_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS="${HALLMARK_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
CORPUS="${BENCH_CORPUS:-$ROOT/../shared/corpus/media/images/real}"
[ -x "$BIN" ] || { echo "no $BIN: nice cargo build --release --bin hallmark" >&2; exit 2; }

WORK="$(mktemp -d /tmp/hallmark-soak.XXXXXX)"
DB="hallmark_soak_$$"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
echo "cpus: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); binary: $BIN"

mkdir -p "$WORK/plain" "$WORK/signed" "$WORK/hostile" "$WORK/data"
i=0
for src in $(ls "$CORPUS"/*.jpg | sort | head -24); do
  convert "$src" -auto-orient -resize 600000@ -quality 88 "$WORK/plain/$(printf 'p_%03d.jpg' $i)"
  i=$((i + 1))
done
# Hostile: truncated JPEGs, a PNG declaring 30000 x 30000, a WAV claiming 6 h, random bytes.
python3 - "$WORK/plain" "$WORK/hostile" <<'EOF'
import os, struct, sys, zlib
src, out = sys.argv[1], sys.argv[2]
for n, f in enumerate(sorted(os.listdir(src))[:4]):
    b = open(os.path.join(src, f), "rb").read()
    open(os.path.join(out, f"cut_{n}.jpg"), "wb").write(b[: len(b) // 3])
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
open(os.path.join(out, "bomb.png"), "wb").write(png)
rate, ch, secs = 48000, 2, 6 * 3600
data = rate * ch * 2 * secs
wav = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack(
    "<IHHIIHH", 16, 1, ch, rate, rate * ch * 2, ch * 2, 16) + b"data" + struct.pack("<I", data)
open(os.path.join(out, "report_six_hours.wav"), "wb").write(wav + b"\0" * 4096)
open(os.path.join(out, "noise.bin"), "wb").write(os.urandom(3000))
EOF

psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" >/dev/null
export HALLMARK__STORAGE__DATA_DIR="$WORK/data" DATABASE_URL="${PG_ADMIN%/*}/$DB" \
  REDIS_URL="$REDIS" HALLMARK__DETECTORS__ENABLED=false HALLMARK__GENERATORS__ENABLED=false \
  HALLMARK__SERVER__PORT=0 HALLMARK_LOG=warn HALLMARK__RATE_LIMITS__PER_SECOND=0
"$BIN" sign "$WORK"/plain/p_00*.jpg -o "$WORK/signed" --model soak-model -j 2 >/dev/null

"$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 1 120); do grep -q '^hallmark listening on' "$WORK/serve.out" && break; sleep 0.5; done
BASE="$(sed -n 's/^hallmark listening on //p' "$WORK/serve.out")"
KEY="$("$BIN" keys create --scopes sign,verify,moderate --name soak 2>/dev/null | tail -1)"
[ -n "$BASE" ] && [ -n "$KEY" ] || { cat "$WORK/serve.err" >&2; exit 1; }
echo "server pid $SERVER_PID on $BASE; ${DURATION} s at ${RATE} req/s"

python3 "$ROOT/scripts/bench/load.py" mixed --base "$BASE" --key "$KEY" --pid "$SERVER_PID" \
  --seconds "$DURATION" --rate "$RATE" --interval "${SOAK_INTERVAL:-30}" \
  --warmup "${SOAK_WARMUP:-120}" --signed "$WORK"/signed/*.jpg \
  --unsigned "$WORK"/plain/*.jpg --hostile "$WORK"/hostile/*
kill -0 "$SERVER_PID" && echo "server still up" || { echo "server died" >&2; exit 1; }
echo "server log lines at WARN or above: $(wc -l <"$WORK/serve.err")"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
