#!/usr/bin/env bash
# Installs the C API: PREFIX/include/nnbackprop.h and nnbackprop_plugin.h (for plugin authors),
# PREFIX/lib/libnnbackprop.so, PREFIX/lib/pkgconfig/nnbackprop.pc and the CMake package config
# PREFIX/lib/cmake/nnbackprop/nnbackprop-config{,-version}.cmake (from cmake/*.in), so that
#   cc prog.c $(pkg-config --cflags --libs nnbackprop)
# works (with PKG_CONFIG_PATH=PREFIX/lib/pkgconfig for a prefix pkg-config does not search), and
# find_package(nnbackprop 0.3 REQUIRED) + target_link_libraries(prog PRIVATE nnbackprop::nnbackprop)
# does in CMake (with -DCMAKE_PREFIX_PATH=PREFIX for such a prefix; examples/cmake does this).
# Usage: scripts/install.sh [PREFIX]   (default /usr/local; builds the library first if needed)
#        scripts/install.sh --pc-only PREFIX   (print the .pc file for PREFIX)
#        scripts/install.sh --version          (print the version, from include/nnbackprop.h)
set -euo pipefail
# PREFIX is taken relative to the caller's folder, before the cd below, and written absolute.
case "${1:-}" in ""|--*) ;; *) set -- "$(realpath -m -- "$1")" ;; esac
cd "$(dirname "$0")/.."
# The version, from the header's macros (the library's own Runtime.version must agree; the C tests check it).
version=$(awk '/#define NNB_VERSION_(MAJOR|MINOR|PATCH) /{v = v (v == "" ? "" : ".") $3} END {print v}' include/nnbackprop.h)
# One .pc for both headers: a plugin includes nnbackprop_plugin.h and links the same library.
pc() {
  cat <<PC
prefix=$1
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: nnbackprop
Description: Neural networks trained by backpropagation on the CPU (NNBackprop C API: nnbackprop.h, and nnbackprop_plugin.h for plugins)
Version: ${version}
Cflags: -I\${includedir}
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lnnbackprop
PC
}
if [ "${1:-}" = "--version" ]; then echo "$version"; exit 0; fi
if [ "${1:-}" = "--pc-only" ]; then pc "$2"; exit 0; fi
prefix=${1:-${PREFIX:-/usr/local}}
[ -f build/lib/libnnbackprop.so ] || scripts/build-lib.sh
install -d "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/nnbackprop"
install -m 644 include/nnbackprop.h include/nnbackprop_plugin.h "$prefix/include/"
install -m 755 build/lib/libnnbackprop.so "$prefix/lib/libnnbackprop.so"
pc "$prefix" > "$prefix/lib/pkgconfig/nnbackprop.pc"
# The CMake files name no absolute path (they find the prefix from their own folder), so only
# the version is filled in.
for name in nnbackprop-config nnbackprop-config-version; do
  sed -e "s/@VERSION@/$version/g" -e "s/@VERSION_MAJOR@/${version%%.*}/g" "cmake/$name.cmake.in" \
    > "$prefix/lib/cmake/nnbackprop/$name.cmake"
done
echo "installed into $prefix"
