#!/usr/bin/env bash
# Serving throughput: `gemma serve` on a gemma-2b-shaped Q4_0 file, 1/4/8 concurrent streams (bench/serve_load.mjs).
#   THREADS=2 scripts/bench_serve.sh [MODEL.gguf]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_common.sh
port=${PORT:-8093}
model=${1:-$dir/g2b-Q4_0.gguf}
if [ ! -f "$model" ]; then
  bench_f16
  build/gemma quantize "$dir/g2b-f16.gguf" "$model" Q4_0 -t "$threads" -q
fi
build/gemma serve "$model" --port "$port" --parallel 8 -t "$threads" 2>"$dir/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/health" | grep -q ok && break; sleep 1; done
node bench/serve_load.mjs --url "http://127.0.0.1:$port" --streams "${STREAMS:-1,4,8}" --tokens "${TOKENS:-64}"
