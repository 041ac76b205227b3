#!/usr/bin/env bash
# Ladder benchmark: every ladder file of a synthetic Gemma model, ours (repacked and --no-repack) beside llama.cpp's
# llama-bench on the same files, alternating runs, best of the rounds, one table.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: scripts/bench_ladder.sh [--shape gemma-2b|gemma-7b] [--types "Q4_0 Q4_K_M ..."] [-p N] [-n N]
                               [--rounds N] [--depth N] [--no-plain] [--cleanup] [--prepare]

Makes a synthetic model of the shape (`gemma synth`), every ladder file from it (`gemma quantize`; an imatrix
from `gemma imatrix` for the IQ types), then benchmarks each file with `gemma bench` and, when LLAMA_BENCH
names a llama-bench binary, with llama.cpp on the same file. Runs alternate (ours, llama.cpp, ours --no-repack)
and each column keeps the best of --rounds rounds (default 2). Prints one markdown table.

  --shape S     gemma-2b (default): the whole ladder plus BF16/F16, pp512/tg128.
                gemma-7b: Q2_K Q4_K_M Q6_K Q8_0 BF16 with load time, peak RSS and decode's share of the
                measured read bandwidth (pp128/tg32 by default: a 7B BF16 token takes about a second).
  --types T     only these files (ladder names, BF16, F16).
  -p N, -n N    prompt / generated tokens.
  --depth N     tokens already in the KV cache before each test, passed to `gemma bench --depth` (and to
                llama-bench -d when it has it); needs a gemma bench with --depth.
  --no-plain    skip the --no-repack column.
  --cleanup     delete each quantized file once measured (7B files are 3-17 GB).
  --prepare     only make the files.
Environment: THREADS (2), BENCH_DIR (/tmp/gemma-bench; files go to BENCH_DIR/SHAPE), LLAMA_BENCH,
BIGMEM_LOCK (a lock file: every run of a 7B file is wrapped in `flock BIGMEM_LOCK`), BENCH_NICE (a nice
value for the timed runs of both engines, e.g. -10 on a machine shared with builds).
EOF
}

shape=gemma-2b types="" p="" n="" rounds=2 depth=0 plain=1 cleanup=0 prepare=0
while [ $# -gt 0 ]; do
  case "$1" in
    --shape) shape=$2; shift 2 ;;
    --types) types=$2; shift 2 ;;
    -p) p=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --depth) depth=$2; shift 2 ;;
    --no-plain) plain=0; shift ;;
    --cleanup) cleanup=1; shift ;;
    --prepare) prepare=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_ladder.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$shape" in
  gemma-2b) big=0; : "${types:=Q2_K IQ3_XS IQ3_S Q3_K_S IQ3_M Q3_K_M Q3_K_L IQ4_XS Q4_0 IQ4_NL Q4_K_S Q4_K_M Q4_1 Q5_0 Q5_K_S Q5_K_M Q5_1 Q6_K Q8_0 BF16 F16}"; : "${p:=512}" "${n:=128}" ;;
  gemma-7b) big=1; : "${types:=Q2_K Q4_K_M Q6_K Q8_0 BF16}"; : "${p:=128}" "${n:=32}" ;;
  *) echo "bench_ladder.sh: --shape must be gemma-2b or gemma-7b" >&2; exit 2 ;;
esac
command -v jq >/dev/null || { echo "bench_ladder.sh: needs jq (scripts/setup.sh installs it)" >&2; exit 1; }
[ -x build/gemma ] || { echo "bench_ladder.sh: build/gemma missing: run scripts/build.sh release" >&2; exit 1; }
if [ -n "${LLAMA_BENCH:-}" ] && [ ! -x "$LLAMA_BENCH" ]; then
  echo "bench_ladder.sh: LLAMA_BENCH=$LLAMA_BENCH is not an executable" >&2; exit 1
fi
threads=${THREADS:-2}
dir=${BENCH_DIR:-/tmp/gemma-bench}/$shape
mkdir -p "$dir"
log="$dir/bench_ladder.log"
: >"$log"
say() { echo "$*" >&2; }
# Runs of big files take the shared lock so two agents never hold two 7B models in memory at once.
locked() { if [ "$big" = 1 ] && [ -n "${BIGMEM_LOCK:-}" ]; then flock "$BIGMEM_LOCK" "$@"; else "$@"; fi; }
# Timed runs: BENCH_NICE (e.g. -10, as root) lifts both engines alike above other work on a shared machine.
timed() { if [ -n "${BENCH_NICE:-}" ]; then locked nice -n "$BENCH_NICE" "$@"; else locked "$@"; fi; }

# The source model: BF16 for 7B (quantize reads it; no extra 17 GB F16 copy), F16 for 2B.
src_type=F16; [ "$big" = 1 ] && src_type=BF16
src="$dir/$shape-$src_type.gguf"
if [ ! -f "$src" ]; then
  say "== synth $src"
  locked build/gemma synth "$src" --shape "$shape" --outtype "$(echo $src_type | tr A-Z a-z)" -q
fi

imatrix="$dir/$shape-imatrix.gguf"
need_imatrix() { case "$1" in IQ*) return 0 ;; *) return 1 ;; esac; }
make_imatrix() {
  [ -f "$imatrix" ] && return
  say "== imatrix $imatrix (calibration text: the repository's docs)"
  cat README.md docs/*.md >"$dir/calibration.txt"
  locked build/gemma imatrix "$src" -f "$dir/calibration.txt" -o "$imatrix" --chunks 4 -c 256 -t "$threads" >>"$log" 2>&1
}

file_for() {
  local t=$1 f="$dir/$shape-$1.gguf"
  [ "$t" = "$src_type" ] && { echo "$src"; return; }
  if [ ! -f "$f" ]; then
    case "$t" in
      F16|BF16) locked build/gemma synth "$f" --shape "$shape" --outtype "$(echo "$t" | tr A-Z a-z)" -q ;;
      *) local im=()
         if need_imatrix "$t"; then make_imatrix; im=(--imatrix "$imatrix"); fi
         say "== quantize $t"
         locked build/gemma quantize "$src" "$f" "$t" "${im[@]}" -t "$threads" -q >>"$log" 2>&1 ;;
    esac
  fi
  echo "$f"
}

if [ "$prepare" = 1 ]; then
  for t in $types; do file_for "$t" >/dev/null; done
  exit 0
fi

depth_args=()
bw_args=(--no-bandwidth); [ "$big" = 1 ] && bw_args=()
llama_depth=()
if [ "$depth" -gt 0 ]; then
  build/gemma bench --help 2>&1 | grep -q -- --depth || { echo "bench_ladder.sh: this gemma bench has no --depth" >&2; exit 1; }
  depth_args=(--depth "$depth")
  if [ -n "${LLAMA_BENCH:-}" ] && "$LLAMA_BENCH" --help 2>&1 | grep -q -- --n-depth; then llama_depth=(-d "$depth"); fi
fi

# ours FILE [extra flags]: "pp tg load_s rss_mb bw_frac" of one run (warm-up plus one repetition per test).
ours() {
  local f=$1; shift
  local out err
  out=$(mktemp) err=$(mktemp)
  timed /usr/bin/time -f 'maxrss_kb=%M' build/gemma bench "$f" -p "$p" -n "$n" -r 1 -t "$threads" --json \
    "${depth_args[@]}" "${bw_args[@]}" "$@" >"$out" 2>"$err" || { cat "$err" >&2; rm -f "$out" "$err"; return 1; }
  cat "$err" >>"$log"
  local load rss
  load=$(sed -n 's/^loaded in \([0-9.]*\) s.*/\1/p' "$err" | tail -1)
  rss=$(sed -n 's/^maxrss_kb=//p' "$err" | tail -1)
  # The bench's own peak RSS leaves out its bandwidth test's buffer; /usr/bin/time's is the fallback.
  jq -r --arg load "${load:-0}" --arg rss "${rss:-0}" \
    '"\(.pp.tokens_per_s) \(.tg.tokens_per_s) \($load) \(if (.peak_rss_bytes // 0) > 0 then .peak_rss_bytes / 1048576 else ($rss|tonumber)/1024 end) \(if .read_bandwidth_gbs > 0 then .tg_read_gbs / .read_bandwidth_gbs else 0 end) \(.read_bandwidth_gbs) \(.weight_bytes)"' "$out"
  rm -f "$out" "$err"
}

# llama FILE: "pp tg rss_mb" of one llama-bench run (its own warm-up plus one repetition).
llama() {
  local f=$1 out err
  out=$(mktemp) err=$(mktemp)
  timed /usr/bin/time -f 'maxrss_kb=%M' "$LLAMA_BENCH" -m "$f" -p "$p" -n "$n" -r 1 -t "$threads" -o json \
    "${llama_depth[@]}" >"$out" 2>"$err" || { tail -5 "$err" >&2; rm -f "$out" "$err"; echo "0 0 0"; return; }
  local rss
  rss=$(sed -n 's/^maxrss_kb=//p' "$err" | tail -1)
  jq -r --arg rss "${rss:-0}" \
    '"\(map(select(.n_gen == 0))[0].avg_ts // 0) \(map(select(.n_prompt == 0))[0].avg_ts // 0) \(($rss|tonumber)/1024)"' "$out"
  rm -f "$out" "$err"
}

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2fx", a / b; else printf "-" }'; }
f1() { awk -v a="$1" 'BEGIN { printf "%.1f", a }'; }
f2() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }

say "threads=$threads pp$p tg$n depth=$depth rounds=$rounds (alternating ours / llama.cpp / ours --no-repack, best of the rounds)"
if [ "$big" = 1 ]; then
  hdr="| file | GiB | load s | RSS GiB | pp$p | tg$n | decode / read bw |"; sep="|---|---|---|---|---|---|---|"
  [ -n "${LLAMA_BENCH:-}" ] && { hdr="$hdr llama pp$p | llama tg$n | llama RSS GiB | pp ratio | tg ratio |"; sep="$sep---|---|---|---|---|"; }
else
  hdr="| file | GiB | pp$p | tg$n |"; sep="|---|---|---|---|"
  [ "$plain" = 1 ] && { hdr="$hdr pp --no-repack | tg --no-repack |"; sep="$sep---|---|"; }
  [ -n "${LLAMA_BENCH:-}" ] && { hdr="$hdr llama pp$p | llama tg$n | pp ratio | tg ratio |"; sep="$sep---|---|---|---|"; }
fi
rows=()
bw=0
for t in $types; do
  f=$(file_for "$t")
  gib=$(awk -v s="$(stat -L -c %s "$f")" 'BEGIN { printf "%.2f", s / 1073741824 }')
  opp=0 otg=0 npp=0 ntg=0 lpp=0 ltg=0 load=999999 rss=0 frac=0 lrss=0
  for ((r = 1; r <= rounds; ++r)); do
    say "== $t round $r: ours"
    read -r a b c d e g _ < <(ours "$f")
    opp=$(max "$opp" "$a"); otg=$(max "$otg" "$b"); frac=$(max "$frac" "$e"); rss=$(max "$rss" "$d"); bw=$(max "$bw" "$g")
    load=$(awk -v a="$load" -v b="$c" 'BEGIN { print (b + 0 < a + 0) ? b : a }')
    if [ -n "${LLAMA_BENCH:-}" ]; then
      say "== $t round $r: llama.cpp"
      read -r a b c < <(llama "$f")
      lpp=$(max "$lpp" "$a"); ltg=$(max "$ltg" "$b"); lrss=$(max "$lrss" "$c")
    fi
    if [ "$big" = 0 ] && [ "$plain" = 1 ]; then
      say "== $t round $r: ours --no-repack"
      read -r a b _ < <(ours "$f" --no-repack)
      npp=$(max "$npp" "$a"); ntg=$(max "$ntg" "$b")
    fi
  done
  if [ "$big" = 1 ]; then
    row="| $t | $gib | $(f1 "$load") | $(f2 "$(awk -v a="$rss" 'BEGIN { print a / 1024 }')") | $(f2 "$opp") | $(f2 "$otg") | $(awk -v a="$frac" 'BEGIN { printf "%.0f%%", 100 * a }') |"
    [ -n "${LLAMA_BENCH:-}" ] && row="$row $(f2 "$lpp") | $(f2 "$ltg") | $(f2 "$(awk -v a="$lrss" 'BEGIN { print a / 1024 }')") | $(ratio "$opp" "$lpp") | $(ratio "$otg" "$ltg") |"
  else
    row="| $t | $gib | $(f2 "$opp") | $(f2 "$otg") |"
    [ "$plain" = 1 ] && row="$row $(f2 "$npp") | $(f2 "$ntg") |"
    [ -n "${LLAMA_BENCH:-}" ] && row="$row $(f2 "$lpp") | $(f2 "$ltg") | $(ratio "$opp" "$lpp") | $(ratio "$otg" "$ltg") |"
  fi
  rows+=("$row")
  say "$row"
  if [ "$cleanup" = 1 ] && [ "$f" != "$src" ]; then rm -f "$f"; fi
done

echo "$shape, $threads threads, pp$p/tg$n tokens/s$([ "$depth" -gt 0 ] && echo " at depth $depth"), best of $rounds alternating rounds"
[ "$big" = 1 ] && echo "decode / read bw: weight bytes x tg tokens/s over gemma bench's measured streaming read bandwidth ($(f1 "$bw") GB/s)"
echo "$hdr"
echo "$sep"
printf '%s\n' "${rows[@]}"
