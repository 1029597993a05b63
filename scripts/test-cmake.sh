#!/usr/bin/env bash
# The CMake package config: installs into build/prefix-cmake (building the library first if
# missing), builds examples/cmake (xor.c through find_package + nnbackprop::nnbackprop), runs it,
# then checks that a copied prefix finds its own library (the config is relocatable) and that
# a request for a newer version than the header's fails at configure time. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v cmake >/dev/null || { echo "skip: cmake is not installed (Debian: apt-get install cmake; scripts/setup.sh installs it)"; exit 0; }

prefix=$root/build/prefix-cmake
version=$(scripts/install.sh --version)
rm -rf "$prefix" "$prefix-moved" build/cmake-example build/cmake-moved build/cmake-too-new
scripts/install.sh "$prefix" >/dev/null
for f in include/nnbackprop.h include/nnbackprop_plugin.h lib/libnnbackprop.so \
         lib/cmake/nnbackprop/nnbackprop-config.cmake lib/cmake/nnbackprop/nnbackprop-config-version.cmake; do
  [ -f "$prefix/$f" ] || fail "install.sh did not install $f"
done
echo "ok: installed into $prefix"

log=build/cmake-example.log
cmake -S examples/cmake -B build/cmake-example -DCMAKE_PREFIX_PATH="$prefix" > "$log" 2>&1 &&
  cmake --build build/cmake-example >> "$log" 2>&1 || { cat "$log" >&2; fail "examples/cmake did not configure and build"; }
echo "ok: $(grep -o 'nnbackprop [0-9.]*: .*' "$log")"
out=$(build/cmake-example/xor) || { echo "$out" >&2; fail "build/cmake-example/xor failed"; }
# xor prints one line per input pair and then "N of 4 right (...)"; it exits 0 only for 4.
grep -q '^4 of 4 right' <<<"$out" || { echo "$out" >&2; fail "xor did not learn XOR"; }
echo "ok: xor built by CMake: $(tail -n 1 <<<"$out")"

# A copied prefix: the config computes the prefix from its own folder, so it must name the copy.
cp -a "$prefix" "$prefix-moved"
cmake -S examples/cmake -B build/cmake-moved -DCMAKE_PREFIX_PATH="$prefix-moved" > "$log" 2>&1 ||
  { cat "$log" >&2; fail "examples/cmake did not configure against the copied prefix"; }
grep -q "nnbackprop [0-9.]*: $prefix-moved/lib/libnnbackprop.so" "$log" ||
  { cat "$log" >&2; fail "the copied prefix's config does not point at its own library"; }
echo "ok: relocatable (a copy of the prefix finds $prefix-moved/lib/libnnbackprop.so)"

mkdir -p build/cmake-too-new/src
cat > build/cmake-too-new/src/CMakeLists.txt <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(too_new NONE)
find_package(nnbackprop 99 REQUIRED)
CMAKE
if cmake -S build/cmake-too-new/src -B build/cmake-too-new/out -DCMAKE_PREFIX_PATH="$prefix" > "$log" 2>&1; then
  fail "find_package(nnbackprop 99) configured against $(grep -o 'version: .*' "$log" || echo 'this version')"
fi
# Refused for its version alone: the considered config is listed with the bare version.
grep -q 'compatible with requested version "99"' "$log" && grep -Eq "version: $version\$" "$log" ||
  { cat "$log" >&2; fail "find_package(nnbackprop 99) failed for another reason"; }
echo "ok: find_package(nnbackprop 99) refused ($(grep -o 'version: [0-9.]*' "$log"))"
echo "cmake ok"
