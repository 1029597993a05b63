#!/usr/bin/env bash
# The C API and the plugin API, from C and Python: builds libnnbackprop.so, the example and
# deliberately broken plugins and the C test programs; runs the C tests plainly and under
# valgrind (leaks and memory errors), checks the exported symbols against the headers, builds
# the C examples with -Werror, and runs the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
step() { printf '\n== %s ==\n' "$*"; }

scripts/build-lib.sh
mkdir -p build/plugins build/tests

step "plugins"
make -s -C examples/plugins OUT="$root/build/plugins"
for variant in NO_ENTRY:noentry HALF_BAD:halfbad FAILS:fails OLD_ABI:oldabi GEMM_THEN_FAILS:gemm_then_fails \
               NESTED:nested BAD_STATUS:status GEMM_ONLY:gemm_only; do
  cc -std=c99 -Wall -Wextra -Werror -fPIC -shared -Iinclude "-D${variant%%:*}" Tests/capi/plugins/bad_plugin.c \
    -o "build/plugins/libbad_${variant##*:}.so" -Lbuild/lib -lnnbackprop
done

step "C API tests"
cflags=(-std=c99 -Wall -Wextra -Werror -O1 -g -Iinclude)
libs=(-Lbuild/lib -Wl,--enable-new-dtags -Wl,-rpath,"$root/build/lib" -lnnbackprop -pthread -lm)
cc "${cflags[@]}" Tests/capi/test_capi.c -o build/tests/test_capi "${libs[@]}"
cc "${cflags[@]}" Tests/capi/test_plugins.c -o build/tests/test_plugins "${libs[@]}"
build/tests/test_capi | tail -n 1
build/tests/test_plugins build/plugins | tail -n 1
# A program built against the 0.1 header (its smaller structs) against this library.
cc "${cflags[@]/-Iinclude/-ITests/capi/abi1}" Tests/capi/test_abi1.c -o build/tests/test_abi1 "${libs[@]}"
build/tests/test_abi1 | tail -n 1

if command -v valgrind >/dev/null; then
  step "C API tests under valgrind"
  # Debian 12's valgrind cannot read the Swift toolchain's DWARF 5 debug info, so it checks a
  # copy of the library without it (same code). RUNPATH yields to LD_LIBRARY_PATH.
  mkdir -p build/valgrind
  cp build/lib/libnnbackprop.so build/valgrind/ && strip --strip-debug build/valgrind/libnnbackprop.so
  # A forked child (test_capi's unprivileged save) exits with libomp's per-thread data unfreed.
  # valgrind runs one thread at a time: OpenMP's spin-waiting workers and the flat-out
  # many-thread groups (threads_predict, threads_starve; TSan and the plain run cover them)
  # crawl there, and on a loaded machine did not finish within CI's hour. Waits are passive,
  # scheduling fair, and each run is bounded, so a hang fails here with a message.
  vg=(timeout 900 valgrind -q --error-exitcode=1 --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite
      --child-silent-after-fork=yes --fair-sched=yes)
  export OMP_WAIT_POLICY=passive
  vgrun() {
    local status=0
    LD_LIBRARY_PATH=build/valgrind "${vg[@]}" "$@" > build/valgrind/run.log 2>&1 || status=$?
    tail -n 1 build/valgrind/run.log
    if [ "$status" -ne 0 ]; then
      [ "$status" -eq 124 ] && echo "valgrind: $* did not finish within 900 s" >&2
      tail -n 40 build/valgrind/run.log >&2
      return "$status"
    fi
  }
  NNB_TEST_QUICK=1 vgrun build/tests/test_capi '!threads_predict' '!threads_starve'
  vgrun build/tests/test_plugins build/plugins
  vgrun build/tests/test_abi1
  unset OMP_WAIT_POLICY
else
  echo "skipping valgrind: not installed"
fi

step "exported symbols"
bash Tests/capi/check_exports.sh

step "C examples (-std=c99 -Wall -Wextra -Werror against include/ alone)"
make -s -C examples/c
build/examples/xor | tail -n 2

step "install + pkg-config"
rm -rf build/prefix
scripts/install.sh "$root/build/prefix" >/dev/null
PKG_CONFIG_PATH="$root/build/prefix/lib/pkgconfig" sh -c \
  'cc -std=c99 -Wall -Wextra -Werror examples/c/xor.c $(pkg-config --cflags --libs nnbackprop) -o build/tests/xor_pkgconfig'
build/tests/xor_pkgconfig | tail -n 1

step "install + CMake package config (scripts/test-cmake.sh)"
scripts/test-cmake.sh

step "Python (ctypes) tests"
python3 -m pytest -q python/tests
