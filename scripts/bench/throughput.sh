#!/usr/bin/env bash
# Verify throughput of a release Hallmark server on PostgreSQL + Redis, and its C2PA cost
# against the reference reader (c2pa-python) on the same files (issue 18, "must show" 3).
#
#   nice cargo build --release --bin hallmark        # once; or HALLMARK_BIN=/path/to/hallmark
#   scripts/bench/throughput.sh [SECONDS]            # default 30 s of load after 5 s warm-up
#
# What it does:
#   1. BENCH_FILES (default 48) distinct corpus photos, resized to ~1 MP JPEGs (quality 90);
#   2. a fresh PostgreSQL database and the local Redis; detectors and generators disabled;
#      the analysis cache off (cache_ttl_seconds = 0), so that every request is analysed;
#   3. half of the files signed by this Hallmark instance (`hallmark sign`, same database and
#      data dir, so its development CA is trusted);
#   4. 4 closed-loop clients POST the files to /v1/verify round-robin: req/s, p50, p99;
#   5. C2PA cost: Hallmark's C2PA validation stage per signed file (/metrics, one request at
#      a time) against c2pa-python's Reader on the same signed files.
# Environment: HALLMARK_TEST_PG_URL (admin URL), HALLMARK_TEST_REDIS_URL, PYTHON (a Python
# with c2pa-python, default .venv/bin/python), BENCH_CLIENTS (4), BENCH_FILES (48).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SECONDS_LOAD="${1:-30}"
BIN="${HALLMARK_BIN:-$ROOT/target/release/hallmark}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
CLIENTS="${BENCH_CLIENTS:-4}"
NFILES="${BENCH_FILES:-48}"
PG_ADMIN="${HALLMARK_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS="${HALLMARK_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
CORPUS="${BENCH_CORPUS:-$ROOT/../shared/corpus/media/images/real}"

[ -x "$BIN" ] || { echo "no $BIN: nice cargo build --release --bin hallmark" >&2; exit 2; }
"$PY" -c 'import c2pa' 2>/dev/null || {
  echo "$PY lacks c2pa-python: python3 -m venv .venv && .venv/bin/pip install c2pa-python==0.38.1" >&2
  exit 2
}

WORK="$(mktemp -d /tmp/hallmark-bench.XXXXXX)"
DB="hallmark_bench_$$"
DB_URL="${PG_ADMIN%/*}/$DB"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== machine"
echo "cpus: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); binary: $BIN"

echo "== inputs: $NFILES distinct ~1 MP JPEGs from $CORPUS"
mkdir -p "$WORK/src" "$WORK/plain" "$WORK/signed" "$WORK/data"
mapfile -t photos < <(ls "$CORPUS"/*.jpg | sort)
[ "${#photos[@]}" -gt 0 ] || { echo "no photos in $CORPUS" >&2; exit 2; }
for i in $(seq 0 $((NFILES - 1))); do
  src="${photos[$((i % ${#photos[@]}))]}"
  # Photos reused past the corpus size are flipped/rotated so that every file is distinct.
  case $(( i / ${#photos[@]} )) in 0) op=() ;; 1) op=(-flop) ;; 2) op=(-flip) ;; *) op=(-rotate 180) ;; esac
  convert "$src" -auto-orient "${op[@]}" -resize 1000000@ -quality 90 \
    "$WORK/src/$(printf 'img_%03d.jpg' "$i")"
done
identify -format '%wx%h %b\n' "$WORK/src/img_000.jpg"

psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" >/dev/null
export HALLMARK__STORAGE__DATA_DIR="$WORK/data" DATABASE_URL="$DB_URL" REDIS_URL="$REDIS" \
  HALLMARK__DETECTORS__ENABLED=false HALLMARK__GENERATORS__ENABLED=false \
  HALLMARK__STORAGE__CACHE_TTL_SECONDS=0 HALLMARK__SERVER__PORT=0 HALLMARK_LOG=warn \
  HALLMARK__RATE_LIMITS__PER_SECOND=0

echo "== signing half of them with hallmark sign"
half=$((NFILES / 2))
signed_in=()
for i in $(seq 0 $((half - 1))); do signed_in+=("$WORK/src/$(printf 'img_%03d.jpg' "$i")"); done
"$BIN" sign "${signed_in[@]}" -o "$WORK/signed" --model bench-model -j 2 >/dev/null
for i in $(seq "$half" $((NFILES - 1))); do cp "$WORK/src/$(printf 'img_%03d.jpg' "$i")" "$WORK/plain/"; done
echo "signed: $(ls "$WORK/signed" | wc -l), unsigned: $(ls "$WORK/plain" | wc -l)"

echo "== server"
"$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 1 120); do grep -q '^hallmark listening on' "$WORK/serve.out" && break; sleep 0.5; done
BASE="$(sed -n 's/^hallmark listening on //p' "$WORK/serve.out")"
KEY="$("$BIN" keys create --scopes verify --name bench 2>/dev/null | tail -1)"
[ -n "$BASE" ] && [ -n "$KEY" ] || { cat "$WORK/serve.err" >&2; exit 1; }
echo "listening on $BASE"

echo "== throughput: $CLIENTS clients, ${SECONDS_LOAD} s, signed + unsigned files interleaved"
mapfile -t all < <(paste -d'\n' <(ls "$WORK"/signed/*.jpg) <(ls "$WORK"/plain/*.jpg))
python3 "$ROOT/scripts/bench/load.py" verify --base "$BASE" --key "$KEY" \
  --clients "$CLIENTS" --seconds "$SECONDS_LOAD" --warmup 5 "${all[@]}" | tee "$WORK/verify.txt"
for t in signed plain; do
  echo "-- $t files only"
  python3 "$ROOT/scripts/bench/load.py" verify --base "$BASE" --key "$KEY" \
    --clients "$CLIENTS" --seconds 10 --warmup 2 "$WORK/$t"/*.jpg | grep -v '^RESULT'
done

echo "== C2PA cost on the $half signed files"
python3 "$ROOT/scripts/bench/load.py" c2pa --base "$BASE" --key "$KEY" "$WORK"/signed/*.jpg \
  | tee "$WORK/hm_c2pa.txt"
"$PY" "$ROOT/scripts/bench/c2pa_reference.py" "$WORK"/signed/*.jpg | tee "$WORK/ref_c2pa.txt"
python3 - "$WORK/verify.txt" "$WORK/hm_c2pa.txt" "$WORK/ref_c2pa.txt" <<'EOF'
import json, sys
res = [json.loads(l[7:]) for f in sys.argv[1:] for l in open(f) if l.startswith("RESULT ")]
v, hm, ref = res
ratio = hm["c2pa_stage_mean_ms"] / ref["mean_ms"]
print("== summary")
print(f"throughput {v['req_per_s']} req/s (target >= 50), p50 {v['p50_ms']} ms, "
      f"p99 {v['p99_ms']} ms (target < 200)")
print(f"C2PA per signed file: Hallmark {hm['c2pa_stage_mean_ms']} ms, c2pa-python "
      f"{ref['mean_ms']} ms: ratio {ratio:.2f}x (target <= 1.5x)")
EOF
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
