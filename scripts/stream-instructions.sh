#!/usr/bin/env bash
# Counts the CPU instructions the gate spends streaming, with valgrind's
# callgrind: unlike seconds, the count repeats for the same binary and input
# whatever else the machine is doing, so two builds compare on a busy VM.
#
#   cargo build --release --workspace
#   scripts/stream-instructions.sh target/release/ollama-gate [another/ollama-gate ...]
#
# For each binary: 100 NDJSON streams (/api/generate) and 100 SSE streams
# (/v1/chat/completions) of 50 chunks from the benchmark's mock, after a
# warm-up; prints the instructions per stream of each. Needs valgrind.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MOCK_BIN=${MOCK_BIN:-$ROOT/target/release/ollama-gate-bench}
MOCK_PORT=${MOCK_PORT:-19434}
PROXY_PORT=${PROXY_PORT:-18000}
ADMIN_PORT=${ADMIN_PORT:-18001}
STREAMS=${STREAMS:-100}
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ -x "$MOCK_BIN" ] || { echo "no mock at $MOCK_BIN: cargo build --release -p ollama-gate-bench" >&2; exit 1; }

measure() {
  local bin work gate mock key
  bin=$(realpath "$1")
  work=$(mktemp -d)
  "$MOCK_BIN" mock --listen "127.0.0.1:$MOCK_PORT" >"$work/mock.log" 2>&1 &
  mock=$!
  env -i PATH="$PATH" PROXY_HOST=127.0.0.1 PROXY_PORT="$PROXY_PORT" ADMIN_PORT="$ADMIN_PORT" \
    DATABASE_URL="sqlite://$work/gate.db" OLLAMA_URL="http://127.0.0.1:$MOCK_PORT" \
    ADMIN_PASSWORD=instructions LOG_FILE="$work/usage.log" RUST_LOG=warn WORKERS=1 \
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" serve >"$work/gate.log" 2>&1 &
  gate=$!
  for _ in $(seq 1 120); do curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/health" && break; sleep 1; done
  key=$(curl -s -H 'Authorization: Bearer instructions' -H 'content-type: application/json' \
    "http://127.0.0.1:$ADMIN_PORT/api/api-keys" -d '{"name":"instructions"}' |
    python3 -c 'import sys, json; print(json.load(sys.stdin)["key"])')
  ndjson() {
    curl -s -o /dev/null -H "Authorization: Bearer $key" "http://127.0.0.1:$PROXY_PORT/api/generate" \
      -d '{"model":"bench-c50","prompt":"hello there","stream":true}'
  }
  sse() {
    curl -s -o /dev/null -H "Authorization: Bearer $key" -H 'content-type: application/json' \
      "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" \
      -d '{"model":"bench-c50","messages":[{"role":"user","content":"hello there"}],"stream":true}'
  }
  for _ in $(seq 1 20); do ndjson; sse; done
  sleep 2
  for lane in ndjson sse; do
    callgrind_control -z "$gate" >/dev/null 2>&1
    for _ in $(seq 1 "$STREAMS"); do $lane; done
    sleep 2 # the settlements
    callgrind_control -d "$lane" "$gate" >/dev/null 2>&1
  done
  kill "$gate" "$mock" 2>/dev/null || true
  wait "$gate" "$mock" 2>/dev/null || true
  local n=1
  for lane in ndjson sse; do
    local total
    total=$(grep -m1 '^summary:' "$work/cg.out.$n" | awk '{print $2}')
    printf '%s\t%s\t%d instructions per stream of 50 chunks\n' "$1" "$lane" $((total / STREAMS))
    n=$((n + 1))
  done
  rm -rf "$work"
}

for bin in "$@"; do measure "$bin"; done
