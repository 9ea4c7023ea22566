#!/usr/bin/env bash
# gpu_check.sh - what a session lent a GPU runs first: two calls of the device tool, each well under
# its 10-minute limit (a session has 15 minutes of device time, the machine's start included).
#
#   scripts/gpu_check.sh check   call 1: build with CUDA, the whole ctest suite (a GPU test that
#                                skips fails here), then compute-sanitizer: memcheck over every
#                                gpu-labelled test, racecheck, initcheck and synccheck over the
#                                conformance suite's cuda configurations, filtered to cumlp's kernels
#   scripts/gpu_check.sh bench   call 2: build, then the benchmark suite with PyTorch beside it
#                                (SUITE=S, M, L or all; default all)
#   scripts/gpu_check.sh build   only the build (also the first step of the two above)
#
# Each call ends with a summary a person can read in the call's output; logs and results go to
# $OUT (the device tool's folder that comes back) or to build-gpu/out.
#
# Environment: CUDA_ARCH (the build's CMAKE_CUDA_ARCHITECTURES; default 90-real, the H100 and
# H200: one target builds in a third of the default's time), CTEST_SECONDS, SANITIZE_SECONDS and
# BENCH_LIMIT_SECONDS (a wall-clock limit on that phase, so that a call ends with its summary
# within the device tool's limit; default none), and run_suite.sh's SUITE, BENCH_SECONDS and GRAPH.
#
# As the first GPU session ran it (2026-11-30, H200; 15 minutes of device time in all, the first
# call's machine start about 30 s): the carried folder .gpucarry/ (ignored via .git/info/exclude)
# held `tar cJf .gpucarry/deps.tar.xz .deps` (5 MB; .deps itself is 39 MB) and Fashion-MNIST (30 MB,
# for test_precision_training's full run), and the calls were
#   tar xJf .gpucarry/deps.tar.xz && CUMLP_FASHION_MNIST_DIR=$PWD/.gpucarry/fashion-mnist \
#     CTEST_SECONDS=150 SANITIZE_SECONDS=300 bash scripts/gpu_check.sh check
#   tar xJf .gpucarry/deps.tar.xz && BENCH_SECONDS=3 BENCH_LIMIT_SECONDS=330 \
#     bash scripts/gpu_check.sh bench
# The build took 11 s, ctest's GPU tests under a minute, memcheck of test_backend_ops alone about
# 100 s, the bench call 295 s.
#
# The machine has nvcc, cmake and PyTorch but no package registry: zlib's headers and OpenBLAS come
# from .deps/ when it is there (made on a machine with apt by scripts/fetch_deps.sh and carried).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
phase=${1:-check}
case $phase in
build | check | bench) ;;
*)
  echo "gpu_check: unknown phase '$phase' (build, check or bench)" >&2
  exit 2
  ;;
esac
build=${GPU_BUILD:-build-gpu}
out=${OUT:-$build/out}
arch=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
mkdir -p "$out"

deps_args=()
use_deps() {
  local blas_dir=$root/.deps/usr/lib/$arch/openblas-openmp
  [[ -d $root/.deps ]] || return 0
  # Carried files may arrive without their symbolic links: remake each library's SONAME link.
  local lib soname
  while IFS= read -r lib; do
    soname=$(objdump -p "$lib" 2>/dev/null | awk '/SONAME/ {print $2}') || soname=""
    if [[ -n $soname && ! -e $(dirname "$lib")/$soname ]]; then
      ln -s "$(basename "$lib")" "$(dirname "$lib")/$soname"
    fi
  done < <(find "$root/.deps" -type f -name '*.so*')
  local zlib openblas
  zlib=$(find "$root/.deps" -type f -name 'libz.so.1.*' | head -n 1) || zlib=""
  openblas=$(find "$blas_dir" -type f -name 'libopenblas*.so' 2>/dev/null | head -n 1) || openblas=""
  if [[ -z $zlib || -z $openblas ]]; then
    echo "gpu_check: .deps/ lacks zlib or OpenBLAS for $arch; run scripts/fetch_deps.sh again" >&2
    exit 1
  fi
  deps_args=(-DZLIB_INCLUDE_DIR="$root/.deps/usr/include" -DZLIB_LIBRARY="$zlib"
    -DCUMLP_OPENBLAS_OPENMP_LIBRARY="$openblas"
    -DCUMLP_OPENBLAS_OPENMP_INCLUDE_DIR="$root/.deps/usr/include/$arch/openblas-openmp")
  export LD_LIBRARY_PATH="$blas_dir:$(dirname "$zlib"):$root/.deps/usr/lib/$arch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

describe_machine() {
  {
    date -u +%Y-%m-%dT%H:%M:%SZ
    git rev-parse --short HEAD 2>/dev/null || echo "commit unknown"
    nvidia-smi -L 2>&1 || true
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
      --format=csv 2>&1 || true
    nvcc --version 2>&1 | tail -n 2 || true
    python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)' 2>&1 || true
  } | tee "$out/machine.txt"
}

do_build() {
  use_deps
  local nvcc_args=()
  if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
    nvcc_args=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
  fi
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCUMLP_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90-real}" "${nvcc_args[@]}" \
    "${deps_args[@]}" >"$out/configure.log" 2>&1 || { tail -n 40 "$out/configure.log"; exit 1; }
  cmake --build "$build" -j "$(nproc)" >"$out/build.log" 2>&1 || { tail -n 60 "$out/build.log"; exit 1; }
  grep -i "warning" "$out/build.log" | head -n 20 || true
  echo "gpu_check: built $build"
}

# Runs a command under the wall-clock limit in seconds $1 (0: none); exit 124 when it ran out.
limited() {
  local seconds=$1
  shift
  if [[ $seconds -gt 0 ]]; then timeout --kill-after=10 "$seconds" "$@"; else "$@"; fi
}

# The summary's lines: "phase  result  seconds  detail".
summary=()
note() { summary+=("$(printf '%-10s %-6s %5ss  %s' "$1" "$2" "$3" "$4")"); }

do_test() {
  # --no-tests=error and the skip check: a GPU test that exits 77 here means the GPU was not seen.
  local status=0 start=$SECONDS
  export CUMLP_TEST_REQUIRE_GPU=1
  limited "${CTEST_SECONDS:-0}" ctest --test-dir "$build" --output-on-failure --no-tests=error -j "$(nproc)" --timeout 600 \
    >"$out/ctest.log" 2>&1 || status=$?
  grep -E "tests passed|tests failed|Not Run|Failed|\*\*\*Skipped" "$out/ctest.log" || true
  if grep -q "gpu.*Skipped\|test_cuda.*Skipped" "$out/ctest.log"; then
    echo "gpu_check: a GPU test skipped (no GPU seen?)"
    status=1
  fi
  local line
  line=$(grep -E "tests passed" "$out/ctest.log" | tail -n 1 || true)
  note ctest "$([[ $status -eq 0 ]] && echo ok || echo FAIL)" $((SECONDS - start)) "${line:-see ctest.log}"
  return $status
}

do_sanitize() {
  local status=0 start=$SECONDS
  limited "${SANITIZE_SECONDS:-0}" bash scripts/gpu_sanitize.sh "$build" >"$out/sanitize.log" 2>&1 || status=$?
  grep -E "^== |ERROR SUMMARY|gpu_sanitize:" "$out/sanitize.log" | tail -n 40 || true
  local errors
  errors=$(grep -c "gpu_sanitize: .* found errors" "$out/sanitize.log" || true)
  note sanitizer "$([[ $status -eq 0 ]] && echo ok || echo FAIL)" $((SECONDS - start)) \
    "${errors:-0} tool runs with errors (sanitize.log)"
  return $status
}

do_bench() {
  local status=0 results start=$SECONDS
  SUITE=${SUITE:-all} limited "${BENCH_LIMIT_SECONDS:-0}" bash bench/run_suite.sh "$build" >"$out/bench.log" 2>&1 || status=$?
  results=$(sed -n 's/^== cumlp .*-> \(.*\)\/cumlp.json$/\1/p' "$out/bench.log" | head -n 1)
  if [[ -n $results && -d $results ]]; then
    # The device tool brings back 8 files: the JSON and the table (the .txt files are in bench.log).
    mkdir -p "$out/results"
    cp "$results"/*.json "$results/comparison.txt" "$out/results/" 2>/dev/null || true
    echo "gpu_check: results in $results (copied to $out)"
  fi
  python3 bench/floors.py >"$out/floors.txt" 2>&1 || true
  tail -n 20 "$out/bench.log"
  [[ $status -eq 0 ]] || echo "gpu_check: the benchmark suite failed (exit $status)"
  note bench "$([[ $status -eq 0 ]] && echo ok || echo FAIL)" $((SECONDS - start)) \
    "${results:-no results} (bench.log, comparison.txt)"
  return $status
}

print_summary() {
  echo
  echo "== gpu_check $phase: $(head -n 3 "$out/machine.txt" | tail -n 1)"
  printf '%s\n' "${summary[@]}"
}

describe_machine
build_start=$SECONDS
do_build
note build ok $((SECONDS - build_start)) "$build"
status=0
case $phase in
build) ;;
check)
  do_test || status=$?
  do_sanitize || status=$?
  ;;
bench) do_bench || status=$? ;;
esac
print_summary
exit $status
