#!/usr/bin/env bash
# fetch_deps.sh - unpacks the Debian packages a machine without a package registry needs to build
# and run cumlp (zlib's headers, OpenBLAS for OpenMP, libgfortran and libquadmath) into .deps/ (ignored by git),
# for carrying to such a machine (the lent GPU machines reach no registry). Run it here, on a
# Debian or Ubuntu machine with apt; scripts/gpu_check.sh uses .deps/ when it is there.
#
#   scripts/fetch_deps.sh            -> .deps/ (about 40 MB: no static libraries, docs or LAPACK)
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(zlib1g zlib1g-dev libopenblas0-openmp libopenblas-openmp-dev libgfortran5 libquadmath0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "${packages[@]}")
rm -rf .deps
mkdir -p .deps
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" .deps
done
# Only what building and running need.
find .deps -name '*.a' -delete
find .deps \( -name 'liblapack*' -o -name 'libblas.so*' \) -delete
rm -rf .deps/usr/share
# zlib1g-dev's libz.so points at an absolute /lib path; point it inside .deps.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
zlib_so=$(find .deps -name 'libz.so.1.*' -type f | head -n 1)
ln -sf "$(realpath --relative-to=".deps/usr/lib/$arch" "$zlib_so")" ".deps/usr/lib/$arch/libz.so"
du -sh .deps
