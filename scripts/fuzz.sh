#!/bin/sh
# fuzz.sh - runs the libFuzzer targets (checkpoint, IDX, CSV, FANN readers) for longer than ctest.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 300); TARGETs among checkpoint idx csv fann (default all). Builds in
# $CUMLP_FUZZ_BUILD (default build-fuzz) with clang, keeps each target's growing corpus in
# <build>/tests/fuzz/corpus/work/<target>, and stops at the first crash, whose input is saved as
# <build>/tests/fuzz/crash_<target>_*. Reproduce one with: <build>/tests/fuzz/fuzz_<target> FILE
set -eu

seconds=${1:-300}
[ $# -gt 0 ] && shift
targets=${*:-checkpoint idx csv fann}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CUMLP_FUZZ_BUILD:-$root/build-fuzz}
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCUMLP_FUZZ=ON -DCUMLP_CUDA=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target cumlp_fuzzers cumlp_make_corpus
fuzz="$build/tests/fuzz"
"$build/tests/cumlp_make_corpus" "$fuzz/corpus"

for target in $targets; do
    echo "== fuzz_$target for ${seconds}s"
    "$fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$fuzz/crash_${target}_" \
        "$fuzz/corpus/work/$target" "$fuzz/corpus/seeds/$target"
done
echo "fuzz.sh: no crash in $targets"
