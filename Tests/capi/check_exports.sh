#!/usr/bin/env bash
# Checks that libnnbackprop.so exports exactly the functions its public headers declare
# (include/nnbackprop.h, and include/nnbackprop_plugin.h where it exists):
#   - every function declared there (with NNB_API) is a defined dynamic symbol of the library,
#   - the library exports no other symbol (a C program could clash with it), apart from the
#     linker's own (_init, _fini, _edata, _end, __bss_start, ...),
#   - the library needs no libswift* at run time (the Swift runtime is linked in statically).
# Usage: Tests/capi/check_exports.sh [path/to/libnnbackprop.so]   (default build/lib/libnnbackprop.so)
set -euo pipefail
cd "$(dirname "$0")/../.."

lib=${1:-build/lib/libnnbackprop.so}
headers=(include/nnbackprop.h)
[ -f include/nnbackprop_plugin.h ] && headers+=(include/nnbackprop_plugin.h)

if [ ! -f "$lib" ]; then
  echo "check_exports: $lib does not exist (build it with scripts/build-lib.sh)" >&2
  exit 2
fi
for tool in nm ldd cc; do
  command -v "$tool" >/dev/null || { echo "check_exports: $tool is not installed" >&2; exit 2; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Functions the headers declare: every declaration starts with NNB_API; the name is the
# identifier right before the declaration's first '('. The compiler strips the comments
# (gcc -fpreprocessed: no macro expansion, no includes); declarations may span lines, so each one is
# joined up to its ';'.
for h in "${headers[@]}"; do
  cc -fpreprocessed -dD -E -P "$h" 2>/dev/null
done |
  awk '
    /^[ \t]*#/ { next }
    /(^|[^A-Za-z0-9_])NNB_API[ \t]/ { decl = ""; collecting = 1 }
    collecting { decl = decl " " $0; if (index($0, ";")) { print decl; collecting = 0 } }
  ' |
  sed -E 's/\(.*//; s/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[ \t]*$/\1/' |
  sort -u >"$tmp/declared"

if [ ! -s "$tmp/declared" ]; then
  echo "check_exports: found no NNB_API declarations in ${headers[*]}" >&2
  exit 2
fi
if grep -qv '^nnb_' "$tmp/declared"; then
  echo "check_exports: could not parse these declarations of ${headers[*]}:" >&2
  grep -v '^nnb_' "$tmp/declared" >&2
  exit 2
fi

# Defined dynamic symbols of the library that other objects can bind to, without symbol
# versions (name@@VERS): global (upper-case type letter) or GNU unique (u). Lower-case types are
# LOCAL entries that a version script's "local: *" left in .dynsym; the dynamic linker never
# binds to them, so they cannot clash.
nm -D --defined-only "$lib" | awk 'NF >= 3 && ($2 ~ /^[A-Z]$/ || $2 == "u") { print $3 }' | sed 's/@.*//' |
  sort -u >"$tmp/all_exported"
# The linker's and the C runtime's own symbols a shared library may carry.
grep -Ev '^(_init|_fini|_edata|_end|__bss_start|_DYNAMIC|_GLOBAL_OFFSET_TABLE_|__data_start|__dso_handle|__TMC_END__|_IO_stdin_used)$' \
  "$tmp/all_exported" >"$tmp/exported" || true

status=0
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
  echo "FAIL: declared in ${headers[*]} but not exported by $lib:"
  printf '  %s\n' $missing
  status=1
fi
if [ -n "$extra" ]; then
  n=$(printf '%s\n' "$extra" | wc -l)
  echo "FAIL: exported by $lib but not declared in ${headers[*]} ($n symbols; a C program could clash with them):"
  printf '%s\n' "$extra" | head -40 | sed 's/^/  /'
  [ "$n" -gt 40 ] && echo "  ... and $((n - 40)) more"
  status=1
fi

swift_deps=$(ldd "$lib" | grep -i 'libswift' || true)
if [ -n "$swift_deps" ]; then
  echo "FAIL: $lib needs the Swift runtime at run time (link it with -static-stdlib):"
  printf '%s\n' "$swift_deps" | sed 's/^/  /'
  status=1
fi
not_found=$(ldd "$lib" | grep 'not found' || true)
if [ -n "$not_found" ]; then
  echo "FAIL: $lib has unresolved dependencies:"
  printf '%s\n' "$not_found" | sed 's/^/  /'
  status=1
fi

if [ "$status" = 0 ]; then
  echo "ok: $lib exports exactly the $(wc -l <"$tmp/declared") functions of ${headers[*]}; no libswift* dependency"
  echo "  dependencies: $(ldd "$lib" | awk '{ print $1 }' | tr '\n' ' ')"
fi
exit "$status"
