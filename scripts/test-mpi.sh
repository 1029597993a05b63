#!/usr/bin/env bash
# Data-parallel training over MPI (nnb train --distributed under mpirun), on one machine:
#   - 2 and 4 ranks give one process's weights on the same global batches (within 1e-5), and
#     the same bits from run to run; only rank 0 prints and writes the model;
#   - a checkpoint written by 2 ranks resumes on 1 and on 4 and ends where 2 ranks end;
#   - a rank that fails (a missing file, a diverged loss) and a rank killed with SIGKILL end the
#     job within 30 s, with a message naming the rank;
#   - Fashion-MNIST (MLP, 5 epochs): 2 ranks' test accuracy within 0.3 points of one process's.
# Every rank checks that its weights equal rank 0's after each epoch (fit does, by hash).
# Skips with a message where mpirun is missing or nnb was built without MPI.
#   scripts/test-mpi.sh [nnb binary, default .build/release/nnb]
set -euo pipefail
cd "$(dirname "$0")/.."
nnb=${1:-.build/release/nnb}
py=${PYTHON:-python3}

if ! command -v mpirun >/dev/null; then
  echo "test-mpi: skipped: mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)"; exit 0
fi
if ! "$nnb" info | grep -q '^MPI: on'; then
  echo "test-mpi: skipped: $nnb was built without MPI ($("$nnb" info | grep '^MPI'))"; exit 0
fi
# Every job is bounded: a hang fails here instead of stalling the suite.
mpi=(timeout 120 mpirun --allow-run-as-root --oversubscribe)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "test-mpi: FAILED: $*" >&2; exit 1; }
compare() { "$py" Tests/mpi/compare_weights.py "$@"; }
common=(--epochs 12 --batch-size 30 --threads 1 --seed 7)

echo "-- one process, 2 and 4 ranks (spirals, 12 epochs, global batch 30)"
"$nnb" train "${common[@]}" --output "$dir/one.safetensors" > "$dir/one.log"
for np in 2 4; do
  "${mpi[@]}" -np $np "$nnb" train --distributed "${common[@]}" --output "$dir/d$np.safetensors" > "$dir/d$np.log"
  [ "$(grep -c '^saved the model' "$dir/d$np.log")" = 1 ] || fail "$np ranks: 'saved the model' printed other than once"
  grep -q "^distributed: $np MPI processes" "$dir/d$np.log" || fail "$np ranks: no 'distributed' line"
  echo -n "$np ranks vs one process: "; compare "$dir/one.safetensors" "$dir/d$np.safetensors" --max-abs-diff 1e-5 \
    || fail "$np ranks differ from one process by more than 1e-5"
done
"${mpi[@]}" -np 2 "$nnb" train --distributed "${common[@]}" --output "$dir/d2-again.safetensors" > /dev/null
echo -n "2 ranks, run twice: "; compare "$dir/d2.safetensors" "$dir/d2-again.safetensors" || fail "two runs of 2 ranks differ"

echo "-- a checkpoint of 2 ranks (6 epochs) resumed by 1 and by 4 ranks (to 12)"
half=(--batch-size 30 --threads 1 --seed 7)
"${mpi[@]}" -np 2 "$nnb" train --distributed "${half[@]}" --epochs 6 --checkpoint --output "$dir/c2.safetensors" > /dev/null
"$nnb" train "${half[@]}" --epochs 12 --resume "$dir/c2.safetensors" --output "$dir/r1.safetensors" > /dev/null
"${mpi[@]}" -np 4 "$nnb" train --distributed "${half[@]}" --epochs 12 --resume "$dir/c2.safetensors" --output "$dir/r4.safetensors" > /dev/null
for r in r1 r4; do
  echo -n "$r vs 2 ranks uninterrupted: "; compare "$dir/d2.safetensors" "$dir/$r.safetensors" --max-abs-diff 1e-5 \
    || fail "the resumed run $r differs"
done

echo "-- a failing rank ends the job"
t0=$(date +%s)
if "${mpi[@]}" -np 1 "$nnb" train --distributed "${common[@]}" : -np 1 "$nnb" train --distributed "${common[@]}" \
  --data "$dir/missing.csv" > "$dir/fail.log" 2>&1; then fail "a rank without its data file: the job succeeded"; fi
t=$(( $(date +%s) - t0 ))
grep -q "rank 1 of 2: .*missing.csv" "$dir/fail.log" || { cat "$dir/fail.log"; fail "no message naming rank 1 and the missing file"; }
[ "$t" -le 30 ] || fail "the job took $t s to end"
echo "missing file on rank 1: ended in $t s: $(grep -m1 'rank 1 of 2' "$dir/fail.log")"
if "${mpi[@]}" -np 2 "$nnb" train --distributed "${common[@]}" --lr 1e30 > "$dir/nan.log" 2>&1; then
  fail "a diverging run succeeded"
fi
grep -q "rank [01] of 2: .*diverged\|rank [01] of 2: .*loss" "$dir/nan.log" || { cat "$dir/nan.log"; fail "no message naming a rank and the loss"; }
echo "diverged loss: $(grep -m1 'rank . of 2' "$dir/nan.log" | cut -c1-120)"

echo "-- a rank killed with SIGKILL ends the job"
t0=$(date +%s)
mpirun --allow-run-as-root --oversubscribe -np 2 "$nnb" train --distributed --epochs 100000 --threads 1 --quiet > "$dir/kill.log" 2>&1 &
job=$!
victim=""
for _ in $(seq 100); do
  for p in $(pgrep -f "nnb train --distributed --epochs 100000" || true); do
    if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -q '^OMPI_COMM_WORLD_RANK=1$'; then victim=$p; fi
  done
  [ -n "$victim" ] && break
  sleep 0.1
done
[ -n "$victim" ] || { kill $job 2>/dev/null; fail "rank 1 never started"; }
sleep 1
kill -9 "$victim"
t1=$(date +%s)
rc=0
for _ in $(seq 300); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
if kill -0 $job 2>/dev/null; then kill -9 $job; fail "the job was still running 30 s after rank 1 was killed"; fi
wait $job || rc=$?
[ "$rc" != 0 ] || fail "the job exited 0 after rank 1 was killed"
echo "rank 1 killed: the job ended in $(( $(date +%s) - t1 )) s with status $rc"

echo "-- Python through the C API (options.distributed), 2 ranks"
lib=${NNBACKPROP_LIB:-build/lib/libnnbackprop.so}
if [ -f "$lib" ] && NNBACKPROP_LIB="$lib" "$py" -c "import numpy" 2>/dev/null; then
  NNBACKPROP_LIB="$lib" "$py" Tests/mpi/train_python.py "$dir" --single
  NNBACKPROP_LIB="$lib" "${mpi[@]}" -np 2 -x NNBACKPROP_LIB "$py" Tests/mpi/train_python.py "$dir"
  # Rank 1 given a NaN feature: nnb_train fails its checks there and, through the group, on rank 0.
  if NNBACKPROP_LIB="$lib" "${mpi[@]}" -np 2 -x NNBACKPROP_LIB "$py" Tests/mpi/train_python.py "$dir" --nan-on-rank1 \
    > "$dir/py-nan.log" 2>&1; then fail "Python: a NaN on rank 1 did not fail the job"; fi
  grep -q "^rank 1: InvalidDataError: .*rank 1 of 2" "$dir/py-nan.log" && grep -q "^rank 0: .*rank 1 of 2 failed its checks before training" "$dir/py-nan.log" \
    || { cat "$dir/py-nan.log"; fail "Python: no error naming rank 1 on both ranks"; }
  echo "Python, NaN on rank 1: $(grep -m1 '^rank 0' "$dir/py-nan.log" | cut -c1-110)"
  "$py" - "$dir" <<'PY' || fail "Python: the ranks' weights differ from each other or from one process"
import sys, numpy as np
d = sys.argv[1]
one, r0, r1 = (np.load(f"{d}/{n}.npz") for n in ("single", "rank0", "rank1"))
same = all(np.array_equal(r0[k], r1[k]) for k in r0.files)
worst = max(float(np.max(np.abs(r0[k].astype(np.float64) - one[k]))) for k in r0.files)
print(f"Python, 2 ranks: ranks bitwise equal {same}; largest difference from one process {worst:.3g}")
sys.exit(0 if same and worst <= 1e-5 else 1)
PY
  if "$py" -c "import mpi4py" 2>/dev/null; then
    NNBACKPROP_LIB="$lib" "${mpi[@]}" -np 2 -x NNBACKPROP_LIB "$py" Tests/mpi/train_python.py "$dir" --mpi4py > "$dir/mpi4py.log" \
      || { cat "$dir/mpi4py.log"; fail "Python with mpi4py's communicator"; }
    [ "$(grep -c 'ranks hold the same weights' "$dir/mpi4py.log")" = 2 ] || { cat "$dir/mpi4py.log"; fail "mpi4py: ranks differ"; }
    echo "Python alongside mpi4py (its COMM_WORLD.Dup() as mpi_comm): $(head -1 "$dir/mpi4py.log")"
  else
    echo "Python alongside mpi4py: skipped (pip install mpi4py)"
  fi
else
  echo "Python: skipped ($lib not built, or no numpy)"
fi

if [ -d /usr/share/datasets/fashion-mnist ] || [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "-- Fashion-MNIST MLP, 5 epochs at global batch 128: one process and 2 ranks"
  fm=(--data fashion-mnist --layers 256,128 --epochs 5 --batch-size 128 --seed 42 --quiet)
  a1=$("$nnb" train "${fm[@]}" --threads 2 | awk '/^test: / { for (i = 1; i <= NF; i++) if ($i == "accuracy") a = $(i + 1); sub(/%.*/, "", a); print a }')
  a2=$("${mpi[@]}" -np 2 "$nnb" train --distributed "${fm[@]}" --threads 1 | awk '/^test: / { for (i = 1; i <= NF; i++) if ($i == "accuracy") a = $(i + 1); sub(/%.*/, "", a); print a }')
  echo "test accuracy: one process $a1%, 2 ranks $a2%"
  awk -v a="$a1" -v b="$a2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= 0.3) }' \
    || fail "2 ranks' accuracy $a2% is not within 0.3 points of one process's $a1%"
fi
echo "test-mpi: all passed"
