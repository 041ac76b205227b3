#!/usr/bin/env bash
# The main job on a demo model: set up, build, make a tiny random-weight Gemma (or use MODEL), quantize it, run it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release >/dev/null
model=${1:-}
mkdir -p demo
if [ -z "$model" ]; then
  model=demo/tiny-f16.gguf
  [ -f "$model" ] || build/gemma synth "$model" --shape tiny --seed 42 -q
fi
build/gemma info "$model" --no-tensors | head -n 8
build/gemma quantize "$model" demo/model.Q4_K_M.gguf Q4_K_M -q
build/gemma run demo/model.Q4_K_M.gguf -p "The capital of France is" -n 32 --seed 1
