#!/usr/bin/env bash
# Configures and builds one flavour: release (default), asan (ASan+UBSan) or fuzz (clang libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
case "$flavour" in
  release) cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
           ninja -C build ;;
  asan)    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEMMA_SANITIZE=ON -DGEMMA_BENCH=OFF >/dev/null
           ninja -C build-asan gemma gemma_tests ;;
  fuzz)    CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEMMA_FUZZ=ON \
             -DGEMMA_TESTS=OFF -DGEMMA_BENCH=OFF >/dev/null
           ninja -C build-fuzz fuzz_gguf ;;
  *) echo "usage: $0 [release|asan|fuzz]" >&2; exit 2 ;;
esac
