#!/usr/bin/env bash
# libFuzzer runs of the file loaders and the layer-description parser (see Tests/fuzz/README.md).
#
#   scripts/fuzz.sh TARGET SECONDS     build the harness (cached) and fuzz TARGET for SECONDS
#   scripts/fuzz.sh all SECONDS        every target in turn, SECONDS each
#   scripts/fuzz.sh build [TARGET]     build only (every harness without TARGET)
#   scripts/fuzz.sh repro TARGET FILE  run TARGET's harness once on FILE (a saved crash)
#
# Targets: model_file csv idx npy description. Harnesses are Swift (Tests/fuzz/*.swift) built
# with -sanitize=fuzzer,address over the library's own sources; CKernels is compiled by the
# toolchain's clang with ASan and coverage, without OpenMP. Everything lives under the scratch
# directory (NNB_FUZZ_DIR, default .build-fuzz): objects, harnesses, and per target work/<target>/
# with the growing corpus (corpus/, kept between runs), a fresh copy of the committed seeds
# (seeds/), crash inputs (artifacts/) and the last log. The committed Tests/fuzz/corpus is only
# read. Each run ends with a line "fuzz TARGET: N executions in S s, C crashes"; the exit status
# is non-zero when a run found something (the input's path is printed).
#
# Environment: NNB_FUZZ_ARGS (extra libFuzzer flags, e.g. -jobs=2), NNB_FUZZ_FRESH=1 (forget the
# grown corpus), NNB_FUZZ_SKIP (known findings a harness steps around, see the README),
# SWIFTC (default: swiftc on PATH, else /opt/swift/usr/bin/swiftc).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
targets=(model_file csv idx npy description)

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }

swiftc=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
[ -x "$swiftc" ] || { echo "fuzz: no swiftc (set SWIFTC)" >&2; exit 1; }
bindir=$(dirname "$(readlink -f "$swiftc")")
clang=$bindir/clang
[ -x "$clang" ] || { echo "fuzz: no clang beside $swiftc" >&2; exit 1; }
[ -f /usr/include/zlib.h ] || { echo "fuzz: zlib.h missing (apt-get install zlib1g-dev)" >&2; exit 1; }
out=${NNB_FUZZ_DIR:-$root/.build-fuzz}
mkdir -p "$out/obj/ckernels" "$out/modules" "$out/bin" "$out/stamps"

# Compiler flags. Swift: -O (bounds and overflow checks stay on) with the fuzzer's coverage and
# ASan; C: the same sanitizers, asserts on, OpenMP off (neither -fopenmp nor NNK_HAVE_OPENMP).
cflags=(-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address -std=c11
        -I "$root/CKernels/include" -I "$root/CKernels" -I "$root/Sources/CMPI/include" -Wno-#warnings)
swiftflags=(-O -g -sanitize=fuzzer,address -swift-version 6 -parse-as-library -package-name nnbackprop
            -module-cache-path "$out/module-cache" -I "$out/modules"
            -Xcc -fmodule-map-file="$root/CKernels/include/module.modulemap" -Xcc -I -Xcc "$root/CKernels/include"
            -Xcc -fmodule-map-file="$root/Sources/CZlib/module.modulemap"
            -Xcc -fmodule-map-file="$root/include/module.modulemap"
            -Xcc -fmodule-map-file="$root/Sources/CMPI/include/module.modulemap" -Xcc -I -Xcc "$root/Sources/CMPI/include")
toolchain=$("$swiftc" --version 2>&1 | head -1)

# stale NAME FILE...: true when FILEs, the flags or the toolchain changed since NAME was built.
# fresh NAME marks it built.
stamp_of() { { echo "$toolchain ${cflags[*]} ${swiftflags[*]}"; cat "$@"; } | sha256sum | cut -d' ' -f1; }
stale() { local name=$1; shift; pending_stamp=$(stamp_of "$@"); [ "$(cat "$out/stamps/$name" 2>/dev/null)" != "$pending_stamp" ]; }
fresh() { echo "$pending_stamp" > "$out/stamps/$1"; }

build_ckernels() {
  local sources headers
  # With them the MPI shim, built without MPI (its calls refuse): the C API links NNBackpropMPI.
  mapfile -t sources < <(find CKernels Sources/CMPI -name '*.c' | sort)
  mapfile -t headers < <(find CKernels Sources/CMPI -name '*.h' -o -name '*.modulemap' | sort)
  stale ckernels "${sources[@]}" "${headers[@]}" || return 0
  echo "fuzz: compiling CKernels (${#sources[@]} files)"
  rm -f "$out"/obj/ckernels/*.o
  for s in "${sources[@]}"; do
    "$clang" "${cflags[@]}" -c "$s" -o "$out/obj/ckernels/$(echo "${s#CKernels/}" | tr / _).o"
  done
  fresh ckernels
}

# swift_module NAME DIR: Sources/DIR compiled whole-module into obj/NAME.o and modules/NAME.swiftmodule.
swift_module() {
  local name=$1 dir=$2 sources deps
  mapfile -t sources < <(find "Sources/$dir" -name '*.swift' | sort)
  mapfile -t deps < <(find CKernels/include Sources/CZlib Sources/CMPI include -type f | sort)
  stale "$name" "${sources[@]}" "${deps[@]}" "$out/stamps/ckernels" $( [ "$name" = NNBackprop ] || echo "$out/stamps/NNBackprop" ) || return 0
  echo "fuzz: compiling $name (${#sources[@]} files)"
  "$swiftc" "${swiftflags[@]}" -module-name "$name" -wmo -c -emit-module \
    -emit-module-path "$out/modules/$name.swiftmodule" "${sources[@]}" -o "$out/obj/$name.o"
  fresh "$name"
}

build_target() {
  local t=$1 objects=("$out/obj/NNBackprop.o")
  [ -f "Tests/fuzz/$t.swift" ] || { echo "fuzz: unknown target '$t' (${targets[*]})" >&2; exit 64; }
  build_ckernels
  swift_module NNBackprop NNBackprop
  if [ "$t" = description ]; then
    swift_module NNBackpropMPI NNBackpropMPI
    swift_module NNBackpropCAPI NNBackpropCAPI
    objects+=("$out/obj/NNBackpropMPI.o" "$out/obj/NNBackpropCAPI.o")
  fi
  stale "fuzz_$t" Tests/fuzz/FuzzSupport.swift "Tests/fuzz/$t.swift" "$out/stamps/ckernels" \
    "$out/stamps/NNBackprop" $( [ "$t" != description ] || echo "$out/stamps/NNBackpropCAPI" ) || return 0
  echo "fuzz: linking fuzz_$t"
  "$swiftc" "${swiftflags[@]}" -module-name "fuzz_$t" Tests/fuzz/FuzzSupport.swift "Tests/fuzz/$t.swift" \
    "${objects[@]}" "$out"/obj/ckernels/*.o -lz -use-ld=lld -o "$out/bin/fuzz_$t"
  fresh "fuzz_$t"
}

# A real user's machine: 4 GiB of memory for the process, and any single allocation past 2 GiB
# reported (a few bytes of input must not ask for that); ASan returns NULL for what it refuses
# instead of reporting it, so the fuzzer's own malloc limit is what reports.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1:detect_stack_use_after_return=0:handle_abort=1:symbolize=1}
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$bindir/llvm-symbolizer}
limits=(-rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=20)
max_len() { case $1 in model_file) echo 8192 ;; description) echo 512 ;; *) echo 4096 ;; esac; }
demangle() { if [ -x "$bindir/swift-demangle" ]; then "$bindir/swift-demangle" --simplified; else cat; fi; }

run_target() {
  local t=$1 seconds=$2 work="$out/work/$1"
  build_target "$t"
  [ "${NNB_FUZZ_FRESH:-0}" = 1 ] && rm -rf "$work/corpus"
  rm -rf "$work/seeds"
  mkdir -p "$work/corpus" "$work/seeds" "$work/artifacts"
  cp Tests/fuzz/corpus/"$t"/* "$work/seeds/"
  local dict=() extra=()
  [ -f "Tests/fuzz/$t.dict" ] && dict=(-dict="Tests/fuzz/$t.dict")
  read -r -a extra <<< "${NNB_FUZZ_ARGS:-}"
  local before after start end rc=0
  if git rev-parse --git-dir >/dev/null 2>&1; then
    echo "fuzz $t: library at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources CKernels include 2>/dev/null || echo ' with uncommitted changes'), $seconds s"
  fi
  before=$(ls "$work/artifacts" | sort)
  start=$(date +%s)
  "$out/bin/fuzz_$t" "${limits[@]}" -max_len="$(max_len "$t")" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "${dict[@]}" "${extra[@]}" "$work/corpus" "$work/seeds" \
    > "$work/last.log" 2>&1 || rc=$?
  end=$(date +%s)
  demangle < "$work/last.log" > "$work/last.demangled.log"
  local execs
  execs=$(awk '/^stat::number_of_executed_units:/ { n = $NF + 0 } END { print n + 0 }' "$work/last.log")
  [ "$execs" -gt 0 ] || execs=$(grep -oE '^#[0-9]+' "$work/last.log" | tail -1 | tr -d '#' || true)
  after=$(ls "$work/artifacts" | sort)
  local found
  found=$(comm -13 <(echo "$before") <(echo "$after") | grep -E '^(crash|leak|timeout|oom)-' || true)
  local n=0
  [ -n "$found" ] && n=$(echo "$found" | wc -l)
  [ "$n" -eq 0 ] && [ "$rc" -ne 0 ] && n=1 # a failure that left no input (a harness error): still a failure
  if [ "$n" -gt 0 ]; then
    echo "---- $t: the report (full log: $work/last.demangled.log) ----"
    # From the first line of the report (sanitizer, libFuzzer, Swift runtime or harness), 60 lines.
    awk '/ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|FUZZ FINDING|Fatal error|==[0-9]+==/ { on = 1 }
         on && shown++ < 60' "$work/last.demangled.log"
    for f in $found; do
      cp "$work/last.demangled.log" "$work/artifacts/$f.log"
      echo "fuzz $t: input saved as $work/artifacts/$f (log $work/artifacts/$f.log)"
      echo "  reproduce: scripts/fuzz.sh repro $t $work/artifacts/$f"
    done
  fi
  echo "fuzz $t: ${execs:-0} executions in $((end - start)) s, $n crash$([ "$n" -eq 1 ] || echo es)"
  [ "$n" -eq 0 ]
}

[ $# -ge 1 ] || usage
case $1 in
  build)
    if [ $# -ge 2 ]; then build_target "$2"; else for t in "${targets[@]}"; do build_target "$t"; done; fi ;;
  repro)
    [ $# -eq 3 ] || usage
    build_target "$2"
    "$out/bin/fuzz_$2" "${limits[@]}" "$3" 2>&1 | demangle ;;
  all)
    [ $# -eq 2 ] || usage
    status=0
    for t in "${targets[@]}"; do run_target "$t" "$2" || status=1; done
    exit $status ;;
  *)
    [ $# -eq 2 ] || usage
    run_target "$1" "$2" ;;
esac
