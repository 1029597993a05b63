#!/usr/bin/env bash
# The C API's abuse and concurrency tests under the sanitizers:
#   ThreadSanitizer: a debug libnnbackprop built with -sanitize=thread and without OpenMP
#     (libomp is not instrumented, and its worker pool is not what these tests are about: the
#     model handle's locks are), running the groups that call one model from many threads.
#   AddressSanitizer (+ UBSan in the C parts): a debug libnnbackprop built with
#     -sanitize=address and OpenMP, running every group of test_capi and the plugin tests.
# The libraries link the toolchain's Swift runtime dynamically (a sanitized runtime is not
# shipped), and the test programs are built with the toolchain's own clang so that the
# sanitizer runtimes match.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
step() { printf '\n== %s ==\n' "$*"; }
toolchain=$(dirname "$(readlink -f "$(command -v swift)")")
clang="$toolchain/clang"
runtime="$toolchain/../lib/swift/linux"
mkdir -p build/tests

build() { # scratch-dir, swift sanitizer, C sanitizer flags, NNB_OPENMP
  NNB_OPENMP=$4 swift build --product nnbackprop --scratch-path "$1" -Xswiftc "-sanitize=$2" -Xcc "-fsanitize=$3" \
    2>&1 | grep -v -e 'Cannot export local symbol' -e 'no OpenMP runtime found' -e '#warning' -e '^ *[0-9]* | ' -e '^ *| ' -e 'warning generated' || true
  test -f "$1/debug/libnnbackprop.so"
}
link() { # output, source, scratch-dir, sanitizer flags
  "$clang" -std=c99 -Wall -Wextra -Werror -O1 -g -fno-omit-frame-pointer $4 -Iinclude "$2" -o "$1" \
    -L"$3/debug" -Wl,-rpath,"$root/$3/debug" -L"$runtime" -Wl,-rpath,"$runtime" -lnnbackprop -ldispatch -lBlocksRuntime \
    -pthread -lm
}

step "C API concurrency tests under ThreadSanitizer (library without OpenMP)"
build .build-tsan thread thread 0
link build/tests/test_capi_tsan Tests/capi/test_capi.c .build-tsan -fsanitize=thread
# Each run is bounded: a deadlock fails the step instead of stalling CI.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" NNB_TEST_QUICK=1 timeout 900 \
  build/tests/test_capi_tsan last_error threads_predict threads_busy threads_starve | tail -n 1

step "C API and plugin tests under AddressSanitizer + UBSan"
build .build-asan address address,undefined 1
link build/tests/test_capi_asan Tests/capi/test_capi.c .build-asan -fsanitize=address,undefined
link build/tests/test_plugins_asan Tests/capi/test_plugins.c .build-asan -fsanitize=address,undefined
export ASAN_OPTIONS="detect_leaks=0 allocator_may_return_null=1" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1"
NNB_TEST_QUICK=1 timeout 900 build/tests/test_capi_asan | tail -n 1
# The plugins link the plain library; the sanitized one must be the one they resolve to.
LD_LIBRARY_PATH="$root/.build-asan/debug" timeout 900 build/tests/test_plugins_asan build/plugins | tail -n 1
