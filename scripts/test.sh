#!/usr/bin/env bash
# Every test: the Swift package's tests (which drive the C kernel suite on every SIMD path this
# CPU has), the C kernel suite under AddressSanitizer/UBSan, the same suite cross-compiled for
# arm64 and run under qemu (the NEON path), and the heavy end-to-end checks in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

step() { printf '\n== %s ==\n' "$*"; }

step "swift test (debug)"
swift build --build-tests
swift test --skip-build

step "build without OpenMP (NNB_OPENMP=0): single-threaded, still correct"
NNB_OPENMP=0 swift build --product nnb-kernels --scratch-path .build-noomp
.build-noomp/debug/nnb-kernels info | tee /dev/stderr | grep -q "OpenMP: off"
.build-noomp/debug/nnb-kernels check

step "C kernel suite under AddressSanitizer + UBSan"
make -s check-asan

if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
  step "C kernel suite on arm64 (NEON) under qemu"
  make -s check-arm64
else
  echo "skipping arm64: gcc-aarch64-linux-gnu or qemu-user is not installed"
fi

step "heavy checks (release)"
NNB_HEAVY_TESTS=1 swift test -c release --filter 'FashionMNIST'
