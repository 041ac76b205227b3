#!/usr/bin/env bash
# Quantize throughput (MB of F16 input per second) on a gemma-2b-shaped synthetic model: the issue's benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_common.sh
bench_f16
for t in ${TYPES:-Q4_K_M IQ4_XS}; do
  build/gemma quantize "$dir/g2b-f16.gguf" "$dir/g2b-$t.gguf" "$t" -t "$threads" -q 2>&1 | tail -n 1 | sed "s/^/$t: /"
  rm -f "$dir/g2b-$t.gguf"
done
