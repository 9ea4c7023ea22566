#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (README's test command).
#   scripts/test.sh              release build in build/, all tests
#   scripts/test.sh --sanitize   ASan + UBSan build in build-asan/, all tests
# Tests that need what this machine lacks (a GPU, the data set, PyTorch) are reported as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ "${1:-}" == --sanitize ]]; then
  # protect_shadow_gap=0: the CUDA driver maps memory where ASan's shadow gap would be.
  export ASAN_OPTIONS="protect_shadow_gap=0:detect_leaks=1:abort_on_error=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  CUMLP_BUILD_TYPE=RelWithDebInfo bash scripts/build.sh build-asan -DCUMLP_SANITIZE=ON
  ctest --test-dir build-asan --output-on-failure -j "$(nproc)" --timeout 1200
else
  bash scripts/build.sh build
  ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 1200
fi
