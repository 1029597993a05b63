#!/usr/bin/env bash
# A training step allocates nothing on the heap in steady state: nnb train is run with the same
# data and epochs but batch sizes giving ~20x more steps, under a malloc-counting shim; the
# counts must differ by less than one allocation per 20 extra steps. Spirals exercise the
# single-threaded path, Fashion-MNIST (2 threads) the OpenMP kernels, an MLP and a small CNN.
# Usage: Tests/alloc/check_steady_state.sh path/to/nnb
set -euo pipefail
nnb=${1:?usage: check_steady_state.sh path/to/nnb}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cc -O2 -fPIC -shared "$(dirname "$0")/malloc_count.c" -o "$dir/libcount.so" -ldl

count() { LD_PRELOAD="$dir/libcount.so" OMP_NUM_THREADS=2 "$nnb" train --quiet "$@" 2>&1 >/dev/null | awk '/^MALLOC_CALLS/ { print $2 }'; }

check() {
  local name=$1 steps_few=$2 steps_many=$3; shift 3
  local few many
  few=$(count "$@" --batch-size "$BATCH_FEW")
  many=$(count "$@" --batch-size "$BATCH_MANY")
  local extra=$((steps_many - steps_few)) grown=$((many - few))
  echo "$name: $few mallocs for $steps_few steps, $many for $steps_many steps: $grown more for $extra more steps"
  [ "$grown" -lt $((extra / 20)) ] || { echo "FAIL $name: training steps allocate on the heap" >&2; exit 1; }
}

BATCH_FEW=200 BATCH_MANY=10 check "spirals (1 thread kernels)" 50 1000 --epochs 5 --test-fraction 0
if [ -d /usr/share/datasets/fashion-mnist ]; then
  BATCH_FEW=1024 BATCH_MANY=48 check "fashion-mnist (OpenMP kernels, 2 threads)" 59 1250 --data fashion-mnist --layers 256,128 --epochs 1
  # Convolution, batch norm and pooling, with image augmentation and a schedule.
  BATCH_FEW=1024 BATCH_MANY=48 check "fashion-mnist CNN (augmented, 2 threads)" 59 1250 --data fashion-mnist \
    --layers "conv2d(4,3,padding=1):relu-batchnorm2d-maxpool2d(2)-flatten-32:relu" --epochs 1 \
    --augment-shift 1 --augment-flip --schedule cosine
fi
echo "ok: no heap allocation per training step"
