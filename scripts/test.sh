#!/usr/bin/env bash
# Every test: the Swift package's tests (which drive the C kernel suite on every SIMD path this
# CPU has), the C kernel suite under AddressSanitizer/UBSan, the same suite cross-compiled for
# arm64 and run under qemu (the NEON path), the C API and plugin tests from C and Python (and
# under ThreadSanitizer and AddressSanitizer), 30 s of each fuzzing target, and the heavy
# end-to-end checks in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

step() { printf '\n== %s ==\n' "$*"; }
# Runs a command, shows its output, and passes that output to the check in $2 (an awk program
# that exits 0 on success). Output goes through a file, never a second open of stdout/stderr
# (which would truncate a log file the caller redirected them to).
expect() {
  local out
  out=$(mktemp)
  bash -c "$1" > "$out"
  cat "$out"
  awk "$2" "$out" || { echo "check failed: $1" >&2; rm -f "$out"; return 1; }
  rm -f "$out"
}

step "swift test (debug)"
swift build --build-tests
swift test --skip-build

step "build without OpenMP (NNB_OPENMP=0): single-threaded, still correct"
NNB_OPENMP=0 swift build --product nnb-kernels --scratch-path .build-noomp
expect ".build-noomp/debug/nnb-kernels info" '/^OpenMP: off$/ { off = 1 } END { exit !off }'
.build-noomp/debug/nnb-kernels check

step "C kernel suite under AddressSanitizer + UBSan"
make -s check-asan

if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
  step "C kernel suite on arm64 (NEON) under qemu"
  make -s check-arm64
else
  echo "skipping arm64: gcc-aarch64-linux-gnu or qemu-user is not installed"
fi

step "examples/swift: a package that depends on NNBackprop by path, trains, predicts"
expect "cd examples/swift && swift run" '/^test accuracy: / { seen = 1; ok = ($3 + 0 >= 95) } END { exit !(seen && ok) }'

step "C API, plugins, C examples and Python (scripts/test-capi.sh)"
scripts/test-capi.sh

step "Python wheel in a fresh venv, without Swift (scripts/test-wheel.sh)"
scripts/test-wheel.sh

step "C API abuse and concurrency tests under ThreadSanitizer and AddressSanitizer (scripts/test-sanitizers.sh)"
scripts/test-sanitizers.sh

step "fuzzing: 30 s of each libFuzzer target on its committed seeds (scripts/fuzz.sh)"
NNB_FUZZ_FRESH=1 scripts/fuzz.sh all 30

step "no heap allocation per training step (release nnb under a malloc-counting shim)"
swift build -c release --product nnb
Tests/alloc/check_steady_state.sh .build/release/nnb

step "data-parallel training over MPI: mpirun -np 2 and 4 (scripts/test-mpi.sh)"
scripts/test-mpi.sh .build/release/nnb

step "heavy checks (release): Fashion-MNIST, the MLP and the README's CNN, from Swift, nnb, C and Python"
NNB_HEAVY_TESTS=1 swift test -c release --filter 'FashionMNIST'
expect "build/examples/fashion_mnist 10" '/test accuracy/ { seen = 1; ok = ($NF + 0 >= 0.885) } END { exit !(seen && ok) }'
expect "build/examples/fashion_mnist --cnn 10" '/test accuracy/ { seen = 1; ok = ($NF + 0 >= 0.920) } END { exit !(seen && ok) }'
# The README's CNN command; its summary line reads "test: loss L, accuracy A% (N rows)".
cnn='conv2d(16,3,padding=1):relu-batchnorm2d-maxpool2d(2)-conv2d(32,3,padding=1):relu-batchnorm2d-maxpool2d(2)-flatten-128:relu-dropout:0.5'
expect ".build/release/nnb train --data fashion-mnist --layers '$cnn' --lr 0.002 --schedule cosine --batch-size 128 --epochs 10" \
  '/^test: / { for (i = 1; i <= NF; i++) if ($i == "accuracy") a = $(i + 1); sub(/%.*/, "", a); seen = 1; ok = (a + 0 >= 92.0) } END { exit !(seen && ok) }'
NNB_HEAVY_TESTS=1 python3 -m pytest -q python/tests -k fashion
