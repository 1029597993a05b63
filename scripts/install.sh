#!/usr/bin/env bash
# Installs the C API: PREFIX/include/nnbackprop.h, PREFIX/lib/libnnbackprop.so and
# PREFIX/lib/pkgconfig/nnbackprop.pc, so that
#   cc prog.c $(pkg-config --cflags --libs nnbackprop)
# works (with PKG_CONFIG_PATH=PREFIX/lib/pkgconfig for a prefix pkg-config does not search).
# Usage: scripts/install.sh [PREFIX]   (default /usr/local; builds the library first if needed)
#        scripts/install.sh --pc-only PREFIX   (print the .pc file for PREFIX)
set -euo pipefail
cd "$(dirname "$0")/.."
# The version, from the header's macros (the library's own Runtime.version must agree; the C tests check it).
version=$(awk '/#define NNB_VERSION_(MAJOR|MINOR|PATCH) /{v = v (v == "" ? "" : ".") $3} END {print v}' include/nnbackprop.h)
pc() {
  cat <<PC
prefix=$1
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: nnbackprop
Description: Neural networks trained by backpropagation on the CPU (NNBackprop C API)
Version: ${version}
Cflags: -I\${includedir}
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lnnbackprop
PC
}
if [ "${1:-}" = "--pc-only" ]; then pc "$2"; exit 0; fi
prefix=${1:-${PREFIX:-/usr/local}}
[ -f build/lib/libnnbackprop.so ] || scripts/build-lib.sh
install -d "$prefix/include" "$prefix/lib/pkgconfig"
install -m 644 include/nnbackprop.h "$prefix/include/nnbackprop.h"
install -m 755 build/lib/libnnbackprop.so "$prefix/lib/libnnbackprop.so"
pc "$prefix" > "$prefix/lib/pkgconfig/nnbackprop.pc"
echo "installed into $prefix"
