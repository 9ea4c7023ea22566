#!/usr/bin/env bash
# Configures and builds cumlp into a build directory.
#   scripts/build.sh [build-dir] [extra cmake arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
shift || true
cuda_args=()
# A fresh shell may not have nvcc on PATH although the toolkit is installed. (The simulated cuda
# backend, -DCUMLP_CUDA_SIM=ON, compiles no CUDA: it needs only the toolkit's headers.)
if [[ " $* " != *" -DCUMLP_CUDA_SIM=ON "* ]] && ! command -v nvcc >/dev/null &&
  [[ -x /usr/local/cuda/bin/nvcc ]]; then
  cuda_args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${CUMLP_BUILD_TYPE:-Release}" "${cuda_args[@]}" "$@"
cmake --build "$build_dir" -j "$(nproc)"
