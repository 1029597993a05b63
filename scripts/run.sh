#!/usr/bin/env bash
# The main job: build in release mode, run the kernel self-check on every SIMD path this CPU
# has, then the GEMM benchmark against numpy (pass --quick for a shorter one).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product nnb-kernels
.build/release/nnb-kernels info
.build/release/nnb-kernels check
.build/release/nnb-kernels bench "$@"
