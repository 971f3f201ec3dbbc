#!/usr/bin/env bash
# Runs fuzz targets one after another for SECONDS each, at the lowest CPU priority, from the
# committed seeds (fuzz/seeds/<target>, copied into fuzz/corpus/<target>, which keeps what the
# fuzzer adds), and prints the executions each made. Crash inputs land in
# fuzz/artifacts/<target>/. Usage: fuzz/run.sh SECONDS [TARGET...] (default: all targets).
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(media_image media_audio media_containers audit_note audit_receipt c2pa_read multipart_form)
mkdir -p logs

nice -n 19 cargo +nightly fuzz build -s none -a
bin=target/x86_64-unknown-linux-gnu/release
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    cp -n "seeds/$t"/* "corpus/$t/"
    # The address space is capped at 4 GiB (RLIMIT_AS, as a worker's): a decoder that reserves
    # more fails its allocation and aborts, which libFuzzer reports as a crash.
    (ulimit -v 4194304 && exec nice -n 19 "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
        -rss_limit_mb=4096 -malloc_limit_mb=4096 -timeout=10 -max_len=65536 \
        -max_total_time="$secs" -print_final_stats=1) >"logs/$t.log" 2>&1 || true
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    crashes=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
    echo "$t: ${secs}s, ${execs} executions, ${crashes} crash/oom/timeout artifacts (logs/$t.log)"
done
