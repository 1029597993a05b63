#!/usr/bin/env bash
# Builds libnnbackprop.so (the C API) into build/: build/lib/libnnbackprop.so, build/include/,
# build/lib/pkgconfig/nnbackprop.pc. The Swift runtime (and FoundationEssentials) are linked statically,
# so a machine without Swift can load it; the version script exports the nnb_ symbols only.
# Needs at run time: libc, libstdc++, libm, zlib and libomp (LLVM's OpenMP runtime, Debian
# libomp5) when built with OpenMP.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
swift build -c release --product nnbackprop --scratch-path .build-lib \
  -Xswiftc -static-stdlib -Xlinker "--version-script=$root/include/nnbackprop.map"
mkdir -p build/lib/pkgconfig build/include
cp .build-lib/release/libnnbackprop.so build/lib/libnnbackprop.so
cp include/nnbackprop.h build/include/
scripts/install.sh --pc-only "$root/build" > build/lib/pkgconfig/nnbackprop.pc
echo "built build/lib/libnnbackprop.so"
