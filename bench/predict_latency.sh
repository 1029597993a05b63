#!/usr/bin/env bash
# One-sample predict latency of the 784-256-128-10 network: nnb_predict through the C API (fp32,
# and the model quantized to int8), fann_run (FANN, libfann-dev), numpy (three matmuls), nnbackprop's Python module, ONNX Runtime
# on the model nnbackprop exports (one thread; pip install onnxruntime) and PyTorch eager (one
# thread), as a table of medians with each one's ratio to nnb_predict; then one batch of 1000
# rows a call, nnb fp32 and int8 beside numpy (every thread the machine has, for each).
#   bench/predict_latency.sh [calls per method, default 20000]
# Needs build/lib/libnnbackprop.so (scripts/build-lib.sh), libfann-dev, numpy; PyTorch is
# optional: the first of $PYTHON, python3, /usr/bin/python3 that imports torch runs it
# (Debian: apt-get install python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-20000}
rounds=10
py=${PYTHON:-python3}

[ -f build/lib/libnnbackprop.so ] || { echo "predict_latency: build/lib/libnnbackprop.so is missing (scripts/build-lib.sh)" >&2; exit 2; }
[ -f /usr/include/floatfann.h ] || { echo "predict_latency: floatfann.h is missing (apt-get install libfann-dev)" >&2; exit 2; }

mkdir -p build/bench
${CC:-cc} -std=c99 -O2 -Wall -Wextra -Werror -Iinclude bench/predict_latency.c -o build/bench/predict_latency \
  -Lbuild/lib -lnnbackprop -Wl,-rpath,"$PWD/build/lib" -lfloatfann -lm

out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
build/bench/predict_latency $((calls / rounds)) "$rounds" | tee -a "$out" | grep '^#' || true
"$py" bench/predict_latency.py --only numpy,nnb-python,onnxruntime,numpy-batch --calls "$calls" | tee -a "$out" | grep -E '^(#|SKIP)' || true

torch_py=""
for candidate in "$py" python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c "import torch, numpy" 2>/dev/null; then torch_py=$candidate; break; fi
done
if [ -n "$torch_py" ]; then
  OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1 "$torch_py" bench/predict_latency.py --only torch --calls "$calls" |
    tee -a "$out" | grep -E '^(#|SKIP)' || true
else
  echo "PyTorch: not installed for $py, python3 or /usr/bin/python3 (apt-get install python3-torch); skipped"
fi

echo
awk '
  /^RESULT / {
    name = $2; for (i = 3; i <= NF - 4; i++) name = name " " $i
    n++; names[n] = name; med[n] = $(NF - 3); p10[n] = $(NF - 2); p90[n] = $(NF - 1)
    if (name == "nnb_predict (C API)") base = $(NF - 3)
  }
  END {
    printf "%-40s %12s %10s %10s %16s\n", "one-sample predict, 784-256-128-10", "median (us)", "p10", "p90", "x nnb_predict fp32"
    for (i = 1; i <= n; i++)
      printf "%-40s %12.2f %10.2f %10.2f %15.1fx\n", names[i], med[i], p10[i], p90[i], (base > 0 ? med[i] / base : 0)
  }' "$out"
echo
awk '
  /^BATCH / {
    name = $2; for (i = 3; i <= NF - 2; i++) name = name " " $i
    n++; names[n] = name; med[n] = $(NF - 1)
    if (name ~ /^numpy/) base = $(NF - 1)
  }
  END {
    printf "%-40s %12s %14s %12s\n", "batch-1000 predict, 784-256-128-10", "median (us)", "samples/s", "x numpy"
    for (i = 1; i <= n; i++)
      printf "%-40s %12.1f %14.0f %11.2fx\n", names[i], med[i], 1000 / med[i] * 1e6, (base > 0 ? base / med[i] : 0)
  }' "$out"
