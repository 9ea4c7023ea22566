#!/usr/bin/env bash
# dist_bench.sh - step time of data-parallel training against ranks on this machine's CPU:
# 1 rank of 1 thread (alone, and joined to a communicator of one), 2 ranks of 1 thread, and 1 rank
# of 2 threads, for the S network (784-256-128-10, global batch 256) and a wider one
# (1024-1024-1024-10, global batch 1024), with the all-reduce's and the agreements' share of the
# step; on a GPU machine also the cuda backend over NCCL and MPI with one rank per GPU. The
# configurations run interleaved ROUNDS times (default 5) and the table keeps each one's fastest
# round: on a shared machine the others' load only ever slows a round down. Output goes to
# bench/results/<date>-<vm or GPU>-dist/ (dist.txt, with the load averages seen).
#
#   bench/dist_bench.sh [build-dir]        (default: build)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build}"
bench="$build/bench/cumlp-dist-bench"
rounds="${ROUNDS:-5}"
if [[ ! -x "$bench" ]]; then
  echo "dist_bench.sh: $bench not found (a build with MPI: cmake --build $build)" >&2
  exit 1
fi
mpirun=(mpirun --bind-to none)
if mpirun --version 2>&1 | grep -q "Open MPI"; then
  mpirun+=(--oversubscribe)
  [[ $(id -u) == 0 ]] && mpirun+=(--allow-run-as-root)
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
fi

gpus=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L | wc -l)
  machine="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr -c 'A-Za-z0-9._-' '-' | sed 's/-\+/-/g; s/-$//')"
else
  machine=vm
fi
out="$here/results/$(date -u +%Y%m%d-%H%M%S)-$machine-dist"
mkdir -p "$out"
raw="$out/raw.txt"
: >"$raw"

# Each configuration: ranks, then cumlp-dist-bench's options.
configs=()
for net in "--layers 784,256,128,10 --batch 256 --steps 50" \
           "--layers 1024,1024,1024,10 --batch 1024 --steps 10"; do
  configs+=("1|$net --threads 1 --alone" "1|$net --threads 1" "2|$net --threads 1"
            "1|$net --threads 2 --alone")
  if ((gpus >= 1)); then configs+=("1|$net --backend cuda --alone"); fi
  if ((gpus >= 2)); then
    configs+=("2|$net --backend cuda --transport nccl" "2|$net --backend cuda --transport mpi")
  fi
done

for ((r = 1; r <= rounds; r++)); do
  for c in "${configs[@]}"; do
    ranks="${c%%|*}"
    read -r -a args <<<"${c#*|}"
    echo "round $r, load $(cut -d' ' -f1-3 /proc/loadavg): ${args[*]} on $ranks" >>"$raw"
    "${mpirun[@]}" -np "$ranks" "$bench" "${args[@]}" | tee -a "$raw"
  done
done

# The fastest round of each configuration (the line without its timings is the key).
{
  echo "# cumlp-dist-bench on $(hostname) ($(nproc) cores), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u)"
  echo "# each configuration's fastest of $rounds interleaved rounds; load averages in raw.txt"
  grep ' step ' "$raw" | awk '{
      key = $0; sub(/ step .*/, "", key)
      t = $0; sub(/.* step +/, "", t); sub(/ ms.*/, "", t)
      if (!(key in best) || t + 0 < best[key] + 0) { best[key] = t; line[key] = $0 }
      if (!(key in order)) { order[key] = ++n; keys[n] = key }
    } END { for (i = 1; i <= n; i++) print line[keys[i]] }'
} | tee "$out/dist.txt"
echo "dist_bench.sh: results in $out"
