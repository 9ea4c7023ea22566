#!/bin/sh
# gpu_sanitize.sh - runs NVIDIA compute-sanitizer over every gpu-labelled test of a build:
# memcheck (with --leak-check full), racecheck, initcheck and synccheck. Fails on any error.
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

failed=0
for name in $tests; do
    [ "$name" = test_cuda_sticky ] && continue
    exe=$(find "$build" -type f -perm -u+x -name "$name" | head -n 1)
    if [ -z "$exe" ]; then
        echo "gpu_sanitize: $name: executable not found" >&2
        failed=1
        continue
    fi
    for tool in memcheck racecheck initcheck synccheck; do
        extra=""
        [ "$tool" = memcheck ] && extra="--leak-check full"
        echo "== $tool: $name"
        status=0
        # shellcheck disable=SC2086
        "$sanitizer" --tool "$tool" $extra --error-exitcode 99 "$exe" || status=$?
        case $status in
        0) ;;
        77) echo "   (skipped)"; break ;;
        *) echo "gpu_sanitize: $tool found errors in $name (exit $status)" >&2; failed=1 ;;
        esac
    done
done
exit $failed
