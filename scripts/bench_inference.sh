#!/usr/bin/env bash
# Inference speed (llama-bench style pp512/tg128, JSON per file) on gemma-2b-shaped synthetic files: the issue's benchmark.
#   THREADS=2 TYPES="Q4_0 Q4_K_M Q8_0" scripts/bench_inference.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_common.sh
bench_f16
for t in ${TYPES:-Q4_0 Q4_K_M Q8_0}; do
  [ -f "$dir/g2b-$t.gguf" ] || build/gemma quantize "$dir/g2b-f16.gguf" "$dir/g2b-$t.gguf" "$t" -t "$threads" -q
  build/gemma bench "$dir/g2b-$t.gguf" -p "${PROMPT:-512}" -n "${GEN:-128}" -r "${REPS:-3}" -t "$threads" --json 2>/dev/null
done
