#!/usr/bin/env bash
# run_suite.sh - the standard benchmark suite (S, M, L) for cumlp and, when a Python with PyTorch
# is found, for PyTorch; results go to bench/results/<date>-<GPU name or host>/ and the comparison
# table is printed (and saved as comparison.txt). On a GPU every network runs in each precision
# (fp32, tf32, bf16, fp16), PyTorch's bf16 and fp16 under its autocast, eager and torch.compile;
# cumlp's cuda rows run with every step as one CUDA graph and launch by launch (GRAPH), with the
# fused kernels (EPILOGUES=off) or also with the ReLU layers in cuBLASLt's GEMM epilogues
# (EPILOGUES=off,relu). Each setting added doubles the cuda rows and the time they take (about 10 s
# each): within a 10-minute call, time the epilogues on their own (SUITE=L EPILOGUES=off,relu).
#
#   bench/run_suite.sh [build-dir]        (default: build)
# Environment: THREADS (CPU threads; default all cores), SUITE (S, M, L or all; default all),
#   PYTHON (a Python with torch; default: the first of python3 and /usr/bin/python3 that has it),
#   CUMLP_BENCH (the cumlp-bench program; default <build-dir>/bench/cumlp-bench), EPILOGUES (the
#   GEMM-epilogue settings of the cuda rows; default off), GRAPH (whether the cuda rows run each
#   step as one CUDA graph, launch by launch, or as a graph queued without a wait: a list of on,
#   off and queued; default on,off), BENCH_SECONDS (the time each
#   configuration's automatic step count aims at, 10 to 200 steps; default 10), PYTORCH_VARIANTS
#   (pytorch_bench.py's --variants; default eager,foreach,fused,cuda-graph,compile; compile-ro,
#   torch.compile's reduce-overhead mode, only when named).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build}"
bench="${CUMLP_BENCH:-$build/bench/cumlp-bench}"
threads="${THREADS:-$(nproc)}"
suite="${SUITE:-all}"

if [[ ! -x "$bench" ]]; then
  echo "run_suite.sh: $bench not found; build first (cmake --build $build)" >&2
  exit 1
fi

# Name the run after the GPU when there is one, else the host.
machine="$(hostname)"
backends="cpu"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  machine="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
  backends="cuda,cpu"
fi
machine="$(printf '%s' "$machine" | tr -c 'A-Za-z0-9._-' '-' | sed 's/-\+/-/g; s/-$//')"
out="$here/results/$(date -u +%Y%m%d-%H%M%S)-$machine"
mkdir -p "$out"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
# cumlp-bench writes each network's initial parameters here and PyTorch starts from them.
init_dir="$(mktemp -d)"
trap 'rm -rf "$init_dir"' EXIT

echo "== cumlp ($backends, $threads threads) -> $out/cumlp.json"
"$bench" --suite "$suite" --backend "$backends" --threads "$threads" --commit "$commit" \
  --epilogues "${EPILOGUES:-off}" --graph "${GRAPH:-on,off}" --seconds "${BENCH_SECONDS:-10}" \
  --save-init "$init_dir" \
  --json "$out/cumlp.json" |
  tee "$out/cumlp.txt"

python=""
for candidate in ${PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import torch' 2>/dev/null; then
    python="$candidate"
    break
  fi
done

files=("$out/cumlp.json")
if [[ -n "$python" ]]; then
  echo "== PyTorch ($python, $threads threads) -> $out/pytorch.json"
  "$python" "$here/pytorch_bench.py" --suite "$suite" --threads "$threads" --commit "$commit" \
    --seconds "${BENCH_SECONDS:-10}" --variants "${PYTORCH_VARIANTS:-eager,foreach,fused,cuda-graph,compile}" \
    --init-dir "$init_dir" --json "$out/pytorch.json" | tee "$out/pytorch.txt"
  files+=("$out/pytorch.json")
else
  echo "== PyTorch: no Python with torch found (tried ${PYTHON:-} python3 /usr/bin/python3); cumlp only"
fi

cmp_python="${python:-python3}"
echo "== comparison"
"$cmp_python" "$here/compare.py" "${files[@]}" | tee "$out/comparison.txt"
