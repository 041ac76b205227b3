# Sourced by the bench_*.sh scripts: the bench folder and its gemma-2b-shaped synthetic F16 model, made once.
threads=${THREADS:-2}
dir=${BENCH_DIR:-/tmp/gemma-bench}
mkdir -p "$dir"
bench_f16() {
  [ -f "$dir/g2b-f16.gguf" ] || build/gemma synth "$dir/g2b-f16.gguf" --shape gemma-2b --outtype f16 -q
}
