#!/usr/bin/env bash
# Runs every shell command block of README.md (```sh / ```bash fences), in order, in one bash
# session, against a freshly started service with a temporary data directory, so that the
# README cannot drift from the code. The session runs under `set -euo pipefail`, and `curl`
# treats an HTTP error as a failure (--fail-with-body): any failing command fails the test,
# naming the README line of its block.
#
# Markers, an HTML comment on the line before a block's fence:
#   <!-- readme-test: skip REASON -->  not run; REASON is printed (for blocks that need what a
#                                       test cannot have: a CA-issued certificate, your media)
#   <!-- readme-test: serve -->        a long-running server command (`make run`): started in
#                                       the background; the session waits until it prints
#                                       "hallmark listening on" (readiness) and sets KEY to the
#                                       bootstrap admin key it printed
#
# The only rewrite: the README's port 8080 becomes a free port, so that the test never meets
# another service on the machine. HALLMARK_README_TIMEOUT: seconds to wait for readiness
# (default 1800: `make run` may have to build first).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
readme="${1:-$repo/README.md}"
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
trap 'rm -rf "$work"' EXIT

cat > "$work/session.sh" <<'EOF'
set -euo pipefail
README_LINE=0
trap 'echo "README.md:$README_LINE: a command of this block failed (exit $?)" >&2' ERR
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap stop_server EXIT
curl() { command curl --fail-with-body "$@"; }
# start_server CMD: runs CMD in its own process group, waits for readiness, sets KEY.
start_server() {
  local log="$README_WORK/server.log" deadline=$((SECONDS + README_TIMEOUT))
  setsid bash -c "$1" >"$log" 2>&1 &
  server_pid=$!
  until grep -q '^hallmark listening on' "$log"; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "README.md:$README_LINE: the server command exited before it was ready:" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "README.md:$README_LINE: the server was not ready in time" >&2
      return 1
    fi
    sleep 1
  done
  KEY="$(sed -n 's/^bootstrap admin API key[^:]*: \(hm_[A-Za-z0-9_-]*\).*/\1/p' "$log" | head -n 1)"
  [ -n "$KEY" ] || { echo "no bootstrap key in the server output" >&2; return 1; }
  echo "   ready: $(grep '^hallmark listening on' "$log")"
}
EOF

python3 - "$readme" "$port" >> "$work/session.sh" <<'PY'
import re, shlex, sys
readme, port = sys.argv[1], sys.argv[2]
lines = open(readme, encoding="utf-8").read().split("\n")
i, marker, counts = 0, None, {"run": 0, "skip": 0, "serve": 0}
while i < len(lines):
    m = re.match(r"\s*<!--\s*readme-test:\s*(skip|serve)\b\s*(.*?)\s*-->\s*$", lines[i])
    if m:
        marker = (m.group(1), m.group(2))
        i += 1
        continue
    fence = re.match(r"\s*```(\w*)\s*$", lines[i])
    if not fence:
        if lines[i].strip():
            marker = None
        i += 1
        continue
    j = i + 1
    while j < len(lines) and not re.match(r"\s*```\s*$", lines[j]):
        j += 1
    if fence.group(1) in ("sh", "bash", "shell"):
        mode, why = marker or ("run", "")
        body = "\n".join(lines[i + 1 : j]).replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        where = f"README.md:{i + 1}"
        print(f"README_LINE={i + 1}")
        if mode == "skip":
            if not why:
                sys.exit(f"{where}: a skip marker needs a reason")
            print(f"printf '\\n%s\\n' {shlex.quote(f'== {where}: skipped: {why}')}")
        elif mode == "serve":
            print(f"printf '\\n%s\\n' {shlex.quote(f'== {where}: in the background: {body.strip()}')}")
            print(f"start_server {shlex.quote(body)}")
        else:
            print(f"printf '\\n%s\\n' '== {where}'")
            print(body)
        counts[mode] += 1
    marker = None
    i = j + 1
print(f"echo 'README blocks: {counts['run']} run, {counts['serve']} served, {counts['skip']} skipped'")
PY

# A fresh instance: its own data directory and port; no settings inherited from the caller.
export README_TIMEOUT="${HALLMARK_README_TIMEOUT:-1800}"
for v in $(env | sed -n 's/^\(HALLMARK_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
unset DATABASE_URL REDIS_URL
export HALLMARK__STORAGE__DATA_DIR="$work/data" HALLMARK__SERVER__PORT="$port"
export XDG_DATA_HOME="$work/xdg" README_WORK="$work"
cd "$repo"
bash "$work/session.sh"
