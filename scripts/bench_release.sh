#!/usr/bin/env bash
# Release benchmark: job counts, wall and CPU time, peak RSS of `gemma release` on a synthetic Gemma-shaped BF16 file.
#   THREADS=2 SHAPE=gemma-2b scripts/bench_release.sh                  # the whole ladder (needs ~40 GB free for 2B)
#   SHAPE=gemma-7b TYPES=Q4_0 IMATRIX_CHUNKS=1 scripts/bench_release.sh   # a subset of a 7B ladder
#   GEMMA=/path/to/older/gemma scripts/bench_release.sh                  # the same run with another build
# The source is written as the release's own BF16 file (no copy), and the imatrix is collected from the
# golden calibration text (IMATRIX_CHUNKS chunks of 512). Outputs are deleted afterwards unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_common.sh
shape=${SHAPE:-gemma-2b}
gemma=${GEMMA:-build/gemma}
out="$dir/release-$shape"
mkdir -p "$out"
[ -f "$out/g.BF16.gguf" ] || build/gemma synth "$out/g.BF16.gguf" --shape "$shape" --outtype bf16 -q
args=("$out/g.BF16.gguf" --out "$out" --name g --types "${TYPES:-all}" -t "$threads"
      --imatrix-text ../shared/golden/tiny-7b/imatrix-calibration.txt --imatrix-chunks "${IMATRIX_CHUNKS:-2}")
build/gemma release "${args[@]}" --dry-run 2>&1 | grep -E "distinct jobs|estimated" || true
/usr/bin/time -v "$gemma" release "${args[@]}" 2>"$out/log" >/dev/null
grep -E "files written|complete in|Elapsed|User time|System time|Maximum resident" "$out/log"
[ "${KEEP:-0}" = 1 ] || find "$out" -maxdepth 1 -name 'g.*' ! -name 'g.BF16.gguf' -delete
