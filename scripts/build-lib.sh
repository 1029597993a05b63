#!/usr/bin/env bash
# Builds libnnbackprop.so (the C API) into build/: build/lib/libnnbackprop.so, build/include/,
# build/lib/pkgconfig/nnbackprop.pc. The Swift runtime (and FoundationEssentials) are linked statically,
# so a machine without Swift can load it; the version script exports the nnb_ symbols only.
# Needs at run time: libc, libstdc++, libm, zlib and libomp (LLVM's OpenMP runtime, Debian
# libomp5) when built with OpenMP.
# RUNPATH starts with $ORIGIN, so a libomp.so.5 placed next to the library (the Python wheel
# does this) wins over the system one; elsewhere it falls through to the toolchain's path.
# Debug info is DWARF 4 (Swift's clang defaults to 5, which Debian 12's valgrind 3.19 refuses
# to read), so valgrind can check the library as built.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
swift build -c release --product nnbackprop --scratch-path .build-lib \
  -Xswiftc -static-stdlib -Xlinker "--version-script=$root/include/nnbackprop.map" \
  -Xlinker -rpath -Xlinker '$ORIGIN' \
  -Xswiftc -dwarf-version=4 -Xcc -gdwarf-4
mkdir -p build/lib/pkgconfig build/include
cp .build-lib/release/libnnbackprop.so build/lib/libnnbackprop.so
cp include/nnbackprop.h include/nnbackprop_plugin.h build/include/
scripts/install.sh --pc-only "$root/build" > build/lib/pkgconfig/nnbackprop.pc
echo "built build/lib/libnnbackprop.so"
