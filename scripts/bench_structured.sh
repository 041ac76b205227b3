#!/usr/bin/env bash
# Decode speed with and without a JSON-schema grammar (gemma run --json-schema) on a gemma-2b-shaped Q4_K_M file.
# Usage: THREADS=2 scripts/bench_structured.sh [MODEL.gguf]   (default: synthetic gemma-2b F16 -> Q4_K_M in $BENCH_DIR)
# Each run is a fresh process, so the constrained numbers include building the grammar's per-state caches.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_common.sh
model=${1:-}
if [ -z "$model" ]; then
  model=$dir/g2b-Q4_K_M.gguf
  if [ ! -f "$model" ]; then
    bench_f16
    build/gemma quantize "$dir/g2b-f16.gguf" "$model" Q4_K_M -t "$threads"
  fi
fi
schema=$dir/bench_schema.json
cat >"$schema" <<'EOF'
{"type": "object", "properties": {"items": {"type": "array", "minItems": 6, "maxItems": 6, "items": {
  "type": "object", "properties": {
    "title": {"type": "string", "minLength": 8, "maxLength": 24},
    "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
    "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 3}},
  "required": ["title", "year", "tags"], "additionalProperties": false}}},
 "required": ["items"], "additionalProperties": false}
EOF
prompt="List some books as JSON:"
# Both runs generate the same number of tokens (a constrained reply cut by -n is fine: it is a speed test).
n=64
speed() { sed -n 's/^generation: *\([0-9]*\) tokens, \([0-9.]*\) s, \([0-9.]*\) tokens\/s (sampling \([0-9.]*\) ms).*/\1 tokens, \3 tok\/s, sampling \4 ms/p'; }
for seed in 1 2; do
  free=$(build/gemma run "$model" -p "$prompt" -n $n --ignore-eos --seed "$seed" -t "$threads" 2>&1 >/dev/null | speed)
  json=$(build/gemma run "$model" -p "$prompt" -n $n --seed "$seed" -t "$threads" --json-schema "$schema" \
           2>"$dir/json.err" >"$dir/json.out"; speed <"$dir/json.err")
  echo "seed $seed: unconstrained $free | json-schema $json ($(grep -o 'json schema: .*' "$dir/json.err"))"
done
