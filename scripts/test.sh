#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (README's test command).
#   scripts/test.sh              release build in build/, all tests; then the simulated cuda backend
#                                (build-sim/: the cuda backend's tests on the CPU simulator of CUDA)
#   scripts/test.sh --sanitize   the same two under ASan + UBSan, in build-asan/ and build-sim-asan/
# Tests that need what this machine lacks (a GPU, the data set, PyTorch) are reported as skipped.
# The simulator needs the CUDA toolkit's headers; without them its build is left out (said so).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
sanitize=0
[[ "${1:-}" == --sanitize ]] && sanitize=1
if ((sanitize)); then
  # protect_shadow_gap=0: the CUDA driver maps memory where ASan's shadow gap would be.
  export ASAN_OPTIONS="protect_shadow_gap=0:detect_leaks=1:abort_on_error=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export CUMLP_BUILD_TYPE=RelWithDebInfo
  builds=(build-asan build-sim-asan)
  flags=(-DCUMLP_SANITIZE=ON)
else
  builds=(build build-sim)
  flags=()
fi

bash scripts/build.sh "${builds[0]}" "${flags[@]}"
ctest --test-dir "${builds[0]}" --output-on-failure -j "$(nproc)" --timeout 1200

if [[ -f /usr/local/cuda/include/cuda_runtime_api.h ]] || command -v nvcc >/dev/null; then
  echo "test.sh: the cuda backend on the CUDA simulator (tests/cudasim)"
  bash scripts/build.sh "${builds[1]}" -DCUMLP_CUDA_SIM=ON "${flags[@]}"
  ctest --test-dir "${builds[1]}" --output-on-failure -j "$(nproc)" --timeout 1200
else
  echo "test.sh: no CUDA toolkit headers: the simulated cuda backend is left out"
fi
