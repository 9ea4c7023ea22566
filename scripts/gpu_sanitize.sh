#!/bin/sh
# gpu_sanitize.sh - runs NVIDIA compute-sanitizer over the gpu-labelled tests of a build: memcheck
# (with --leak-check full) over each, and racecheck, initcheck and synccheck over the conformance
# suite (its cuda configurations), filtered to cumlp's kernels. Fails on any error.
#
#   scripts/gpu_sanitize.sh [build-dir]      (default: build)
#
# A test that skips (exit 77) counts as passed, but one that finds no GPU fails (see below).
# test_cuda_sticky provokes a device fault on purpose and is left out.
set -eu
# A test that runs cpu rows too (test_backend_ops) must not pass here without seeing the GPU.
export CUMLP_TEST_REQUIRE_GPU=1
# The sanitizer watches device code: the conformance suite runs only its cuda configurations.
export CUMLP_TEST_CONFIGS=cuda
# The sanitizer holds device memory of its own: test_cuda_training skips its free-memory equality.
export CUMLP_TEST_UNDER_SANITIZER=1

build=${1:-build}
sanitizer=${COMPUTE_SANITIZER:-}
if [ -z "$sanitizer" ]; then
    if command -v compute-sanitizer >/dev/null 2>&1; then
        sanitizer=compute-sanitizer
    elif [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
        sanitizer=/usr/local/cuda/bin/compute-sanitizer
    else
        echo "gpu_sanitize: compute-sanitizer not found (set COMPUTE_SANITIZER)" >&2
        exit 1
    fi
fi
if [ ! -d "$build" ]; then
    echo "gpu_sanitize: no build directory $build" >&2
    exit 1
fi

# The executables of the tests labelled gpu, from ctest's own listing.
tests=$(ctest --test-dir "$build" -L gpu -N | sed -n 's/^ *Test *#[0-9]*: *\([A-Za-z0-9_]*\).*/\1/p')
if [ -z "$tests" ]; then
    echo "gpu_sanitize: no gpu-labelled tests in $build" >&2
    exit 1
fi

# racecheck, initcheck and synccheck are slow on every kernel cuBLAS launches: they watch only
# cumlp's own kernels (every name ends in _kernel), where the option to filter by name exists.
kernel_filter=""
if "$sanitizer" --help 2>/dev/null | grep -q -- "--kernel-name "; then
    kernel_filter="--kernel-name kns=_kernel"
fi

# Runs one tool over one test's executable; returns 1 if the tool found errors.
run_tool() {
    tool=$1 name=$2 exe=$3 extra=$4
    echo "== $tool: $name"
    status=0
    # shellcheck disable=SC2086
    "$sanitizer" --tool "$tool" $extra --error-exitcode 99 "$exe" || status=$?
    case $status in
    0) return 0 ;;
    77) echo "   (skipped)"; return 0 ;;
    *) echo "gpu_sanitize: $tool found errors in $name (exit $status)" >&2; return 1 ;;
    esac
}

failed=0
for name in $tests; do
    [ "$name" = test_cuda_sticky ] && continue
    exe=$(find "$build" -type f -perm -u+x -name "$name" | head -n 1)
    if [ -z "$exe" ]; then
        echo "gpu_sanitize: $name: executable not found" >&2
        failed=1
        continue
    fi
    run_tool memcheck "$name" "$exe" "--leak-check full" || failed=1
    # The conformance suite runs every kernel on many shapes: enough for the slower tools.
    [ "$name" = test_backend_ops ] || continue
    for tool in racecheck initcheck synccheck; do
        run_tool "$tool" "$name" "$exe" "$kernel_filter" || failed=1
    done
done
exit $failed
