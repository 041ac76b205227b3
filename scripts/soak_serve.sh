#!/usr/bin/env bash
# Soak test of `gemma serve` on 127.0.0.1: a tiny model, --parallel 8, 64 clients of mixed good and bad requests.
# Usage: scripts/soak_serve.sh [SECONDS=300]   (env: GEMMA_BIN, SOAK_MODEL, SOAK_CLIENTS=64, THREADS=2)
# Prints the summary (requests, errors by kind, RSS after warm-up and at the end, p50/p99 latency) and exits
# non-zero when a rule is broken. A benchmark, not part of the suite (the suite runs a 30-second version).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
bin=${GEMMA_BIN:-build/gemma}
clients=${SOAK_CLIENTS:-64}
ctx=1024
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

[ -x "$bin" ] || { echo "soak: $bin not found (build first: scripts/build.sh)" >&2; exit 2; }
[ -d tests/server/node_modules/openai ] || (cd tests/server && npm ci --no-audit --no-fund --fetch-retries=3 >/dev/null)
model=${SOAK_MODEL:-}
if [ -z "$model" ]; then
  model=$work/tiny.gguf
  vocab=${GEMMA_VOCAB:-../shared/golden/vocab/gemma-vocab.gguf}
  vocab_args=()
  [ -f "$vocab" ] && vocab_args=(--vocab "$vocab")
  "$bin" synth "$model" --shape tiny --n-vocab 1024 -q "${vocab_args[@]}"
fi

"$bin" serve "$model" --host 127.0.0.1 --port 0 --parallel 8 --queue 64 --ctx "$ctx" -t "${THREADS:-2}" \
  --kv-type f16 -q >"$work/serve.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 600); do
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/serve.log" | head -n 1)
  if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "soak: the server did not come up" >&2; cat "$work/serve.log" >&2; exit 1; }
echo "soak: ${seconds}s, $clients clients, server pid $server_pid on 127.0.0.1:$port" >&2

rc=0
node tests/server/soak.mjs --url "http://127.0.0.1:$port" --pid "$server_pid" --seconds "$seconds" \
  --clients "$clients" --ctx "$ctx" || rc=$?

kill -TERM "$server_pid"
for _ in $(seq 1 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then echo "soak: the server did not exit after SIGTERM" >&2; rc=1; fi
wait "$server_pid" || { echo "soak: the server exited with status $?" >&2; rc=1; }
server_pid=""
exit $rc
