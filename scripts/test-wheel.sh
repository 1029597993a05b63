#!/usr/bin/env bash
# The Python wheel, as a user without Swift gets it: builds it (pip wheel ., which runs
# scripts/build-lib.sh), checks its tag, installs it into a fresh venv (numpy from PyPI), then
# trains and predicts there with a bare environment (no Swift on PATH, no LD_LIBRARY_PATH) from
# outside the checkout, and checks that the libomp the process loaded is the wheel's copy.
# Where a mount namespace is allowed (unshare -m, root), it also reruns that with the system
# libomp made unreadable, as on a machine without libomp5. Safe to rerun: it starts clean.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

rm -rf build/wheel build/wheel-venv
python3 -m pip wheel . --no-deps -q -w build/wheel
version=$(scripts/install.sh --version)
# py3-none: ctypes code, no extension module; linux_x86_64, not manylinux: nobody audited it.
tag=py3-none-linux_x86_64
wheel=build/wheel/nnbackprop-$version-$tag.whl
[ -f "$wheel" ] || fail "expected $wheel, pip wrote: $(ls build/wheel)"
info=$(python3 -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())' \
  "$wheel" "nnbackprop-$version.dist-info/WHEEL")
grep -qx "Tag: $tag" <<<"$info" || fail "$wheel: its WHEEL file has no 'Tag: $tag':"$'\n'"$info"
echo "ok: wheel $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

python3 -m venv build/wheel-venv
venv=$root/build/wheel-venv
"$venv/bin/python" -m pip install -q "$wheel"  # numpy comes from PyPI as its dependency
pkg=$("$venv/bin/python" -c 'import nnbackprop, os; print(os.path.dirname(nnbackprop.__file__))')
echo "ok: installed into $pkg"

# The run-time search order: RUNPATH (after LD_LIBRARY_PATH, which the checks unset) comes
# before ld.so.cache and the default folders, so $ORIGIN first means the package's copy wins.
runpath=$(readelf -d "$pkg/libnnbackprop.so" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
case "$runpath" in '$ORIGIN'|'$ORIGIN:'*) ;; *) fail "$pkg/libnnbackprop.so: RUNPATH is '$runpath', not \$ORIGIN first" ;; esac
echo "ok: RUNPATH $runpath"
if [ -f "$pkg/libomp.so.5" ]; then
  resolved=$(env -i ldd "$pkg/libnnbackprop.so" | awk '$1 == "libomp.so.5" {print $3}')
  [ "$resolved" = "$pkg/libomp.so.5" ] || fail "ldd resolves libomp.so.5 to '$resolved', not $pkg/libomp.so.5"
  echo "ok: ldd resolves libomp.so.5 to the package's copy"
fi

# The check itself, run from an empty folder so that python/ of this checkout is not importable.
check=$(cat <<'PY'
import os, sys
import numpy as np
import nnbackprop

venv = os.path.realpath(sys.argv[1])
pkg = os.path.dirname(os.path.realpath(nnbackprop.__file__))
assert pkg.startswith(venv + os.sep), f"imported {nnbackprop.__file__}, not from {venv}"
lib = os.path.realpath(nnbackprop.library_path())
assert lib == os.path.join(pkg, "libnnbackprop.so"), f"loaded {lib}"
x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
y = np.array([0, 1, 1, 0])
model = nnbackprop.Model("2-8:tanh-2", seed=1)
model.fit(x, y, epochs=500, batch_size=4, lr=0.05)
predicted = model.predict_classes(x).tolist()
assert predicted == y.tolist(), f"XOR predicted {predicted}"
with open("/proc/self/maps") as maps:
    omp = {line.split()[-1] for line in maps if "libomp" in line.rsplit("/", 1)[-1]}
want = {os.path.join(pkg, "libomp.so.5")} if nnbackprop.openmp_enabled() else set()
assert {os.path.realpath(p) for p in omp} == want, f"libomp mapped from {sorted(omp)}, wanted {sorted(want)}"
print(f"nnbackprop {nnbackprop.version()} from the venv learned XOR ({predicted}); libomp from {sorted(omp) or 'nowhere (no OpenMP)'}")
PY
)
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT
bare() { (cd "$run" && env -i HOME="$HOME" PATH="$venv/bin:/usr/bin:/bin" "$@"); }
echo "ok: $(bare python -c "$check" "$venv")"

# A machine without libomp5: /dev/null over the system's libomp file in a private mount
# namespace makes that copy unloadable ("file too short"); the control shows the hiding works.
system_omp=$(ldd build/lib/libnnbackprop.so | awk '$1 == "libomp.so.5" {print $3}')
if [ -z "$system_omp" ]; then
  echo "skip: no system libomp to hide (library built without OpenMP)"
elif ! unshare -m true 2>/dev/null; then
  echo "skip: hiding the system libomp needs a mount namespace (unshare -m, as root)"
else
  hidden=$(bare unshare -m --propagation private sh -c '
    mount --bind /dev/null "$(readlink -f "$1")" || exit
    # The control: the checkout library, which has no libomp beside it, must now fail to load.
    if python -c "import ctypes, sys; ctypes.CDLL(sys.argv[1])" "$2" 2>/dev/null; then
      echo "$2 still loads: the system libomp is not hidden" >&2; exit 1
    fi
    python -c "$3" "$4"' sh "$system_omp" "$root/build/lib/libnnbackprop.so" "$check" "$venv") ||
    fail "the check with the system libomp hidden"
  echo "ok: system libomp hidden: $hidden"
fi
echo "wheel ok"
