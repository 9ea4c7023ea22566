#!/usr/bin/env bash
# Installs what cumlp needs on a Debian machine, if it is missing.
#   scripts/setup.sh [test]   build tools, OpenBLAS, zlib, gfortran, clang (fuzzers), Fashion-MNIST,
#                             PyTorch (interoperability test, benchmarks), the locales (a
#                             decimal-comma locale for the locale-independence test) and Open MPI
#                             (data-parallel training and its tests under mpirun)
#   scripts/setup.sh demo     build tools, OpenBLAS, zlib and the Fashion-MNIST data set
#   scripts/setup.sh build    only what the build needs
# The CUDA toolkit is not installed here: the cuda backend is built when one is found
# (nvcc on PATH or under /usr/local/cuda).
set -euo pipefail

# libopenblas-openmp-dev: OpenBLAS's OpenMP build shares its threads with the cpu backend's OpenMP
# loops; the pthread build would compete with them for the cores.
packages=(build-essential cmake pkg-config zlib1g-dev libopenblas-openmp-dev)
case "${1:-test}" in
  build) ;;
  demo) packages+=(dataset-fashion-mnist) ;;
  test) packages+=(gfortran clang libclang-rt-14-dev dataset-fashion-mnist python3-torch python3-numpy
             locales-all libopenmpi-dev openmpi-bin) ;;
  *) echo "usage: $0 [build|demo|test]" >&2; exit 1 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: everything needed is installed"
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=""
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
