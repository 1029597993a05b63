#!/usr/bin/env bash
# The main job: build in release mode, train a network on the built-in two-spirals data and
# print its test accuracy (`nnb train`), then run the kernel self-check on every SIMD path this
# CPU has.
#   scripts/run.sh --bench           also the benchmarks: training throughput against numpy and
#                                    PyTorch (`nnb bench`), then GEMM against numpy
#   scripts/run.sh --bench --quick   shorter benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."
bench=0 quick=0
for arg in "$@"; do
  case "$arg" in
    --bench) bench=1 ;;
    --quick) quick=1 ;;
    *) echo "usage: scripts/run.sh [--bench [--quick]]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh
swift run -c release nnb train
swift build -c release --product nnb-kernels
.build/release/nnb-kernels info
.build/release/nnb-kernels check
if [ "$bench" = 1 ]; then
  if [ "$quick" = 1 ]; then
    .build/release/nnb bench --samples 10000 --repeats 1
    .build/release/nnb-kernels bench --quick
  else
    .build/release/nnb bench
    .build/release/nnb-kernels bench
  fi
fi
