#!/usr/bin/env bash
# demo.sh - trains a 784-256-128-10 ReLU network on Fashion-MNIST with the `cumlp` command on
# the best backend this machine has, and prints its test accuracy.
#
#   scripts/demo.sh                      install what is missing (apt-get), build, train, evaluate
#   CUMLP_DEMO_EPOCHS=N scripts/demo.sh  train for N epochs instead of 10
#   CUMLP_FASHION_MNIST_DIR=DIR ...      read the four IDX files (.gz) from DIR
#
# On a fresh Debian machine it installs (scripts/setup.sh demo) the build tools, OpenBLAS, zlib and
# dataset-fashion-mnist (which puts the files under /usr/share/datasets/fashion-mnist/), then
# builds a Release tree in build/ and runs `cumlp train` with a held-out validation split, the
# model saved to build/demo/fashion.safetensors, a per-epoch log and an SVG of the curves.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${CUMLP_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
epochs=${CUMLP_DEMO_EPOCHS:-10}

# ---- what a fresh Debian machine lacks -----------------------------------------------------------
if [[ -n "${CUMLP_FASHION_MNIST_DIR:-}" ]]; then
  bash "$root/scripts/setup.sh" build
else
  bash "$root/scripts/setup.sh" demo
fi
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
         t10k-labels-idx1-ubyte.gz; do
  [[ -r "$data/$f" ]] || { echo "demo: $data/$f not found" >&2; exit 2; }
done

# ---- build ----------------------------------------------------------------------------------------
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j"$(nproc)" --target cumlp_cli >/dev/null
cumlp="$root/build/src/cli/cumlp"
"$cumlp" info

# ---- train on the best backend (auto: cuda, else cpu, else reference) -----------------------------
out="$root/build/demo"
mkdir -p "$out"
start=$(date +%s)
"$cumlp" train \
  --data "$data/train-images-idx3-ubyte.gz" --labels "$data/train-labels-idx1-ubyte.gz" \
  --test-data "$data/t10k-images-idx3-ubyte.gz" --test-labels "$data/t10k-labels-idx1-ubyte.gz" \
  --scale minmax --val-split 0.05 \
  --layers 784,256,128,10 --act relu \
  --optimizer adam --lr 0.001 --schedule cosine --epochs "$epochs" --batch 128 --seed 42 \
  --backend auto \
  --save "$out/fashion.safetensors" --log "$out/epochs.csv" --plot "$out/curves.svg" \
  | tee "$out/train.txt"
end=$(date +%s)

# ---- the saved model, evaluated again from its file -----------------------------------------------
"$cumlp" eval --model "$out/fashion.safetensors" \
  --data "$data/t10k-images-idx3-ubyte.gz" --labels "$data/t10k-labels-idx1-ubyte.gz"
accuracy=$(sed -n 's/^test accuracy \([0-9.]*\).*/\1/p' "$out/train.txt")
echo "demo: Fashion-MNIST test accuracy $accuracy after $epochs epochs, $((end - start)) s of training"
echo "demo: curves in $out/curves.svg, per-epoch log in $out/epochs.csv"
