#!/bin/sh
# install_pkgconfig.sh BUILD_DIR CC [CFLAGS] - installs the build to a fresh prefix (cmake --install
# --prefix), compiles and runs a program with what `pkg-config --cflags --libs cumlp` says there,
# then moves the whole prefix elsewhere and does it again: the .pc file must point at the prefix
# it was installed to, wherever that is (it pointed at the configure-time prefix, /usr/local).
# CFLAGS are the build's own that a program linking it needs (the sanitizers'). Exits 77
# (skipped) without pkg-config.
set -eu
build=$1
cc=$2
cflags=${3:-}
command -v pkg-config >/dev/null 2>&1 || { echo "skipped: no pkg-config"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/cumlp_install.XXXXXX")
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/first" >/dev/null
cat >"$work/version.c" <<'PROGRAM'
#include <cumlp.h>
#include <stdio.h>
int main(void) {
    printf("cumlp %s\n", cumlp_version_string());
    return cumlp_version_number() == CUMLP_VERSION_NUMBER ? 0 : 1;
}
PROGRAM

check() { # check PREFIX: pkg-config finds the prefix, a program compiles, links and runs
    pc=$(find "$1" -name cumlp.pc | head -n 1)
    [ -n "$pc" ] || { echo "no cumlp.pc under $1"; exit 1; }
    export PKG_CONFIG_PATH="${pc%/cumlp.pc}"
    prefix=$(cd "$(pkg-config --variable=prefix cumlp)" && pwd -P)
    want=$(cd "$1" && pwd -P)
    [ "$prefix" = "$want" ] || { echo "cumlp.pc: prefix $prefix, installed in $want"; exit 1; }
    libdir=$(pkg-config --variable=libdir cumlp)
    # shellcheck disable=SC2046 # pkg-config's flags are words
    "$cc" $cflags $(pkg-config --cflags cumlp) "$work/version.c" -o "$work/version" \
        $(pkg-config --libs cumlp)
    LD_LIBRARY_PATH="$libdir" "$work/version"
}
check "$work/first"
mv "$work/first" "$work/moved"
check "$work/moved"
echo "pkg-config: relocatable"
