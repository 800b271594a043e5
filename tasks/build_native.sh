#!/usr/bin/env bash
# Builds the project's native kernels (mod/backend/native/*.c: the sparse SAE step, fused Adam,
# the cross-entropy over the unembedding) into mod/backend/native/build/librtd_native.so with the
# system C compiler, for this machine's CPU (-march=native). Optional, like OpenBLAS: without it
# the tensor stages run on tfjs alone and say so. bash tasks/setup.sh runs this; run it again after
# changing a .c file (the loader refuses a library built from other sources and says so).
#
#   bash tasks/build_native.sh            (or: npx deno task build:native)
#   CC=clang bash tasks/build_native.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=mod/backend/native
out=$src/build/librtd_native.so
cc=${CC:-cc}
say() { echo "build:native: $*"; }
if ! command -v "$cc" >/dev/null 2>&1; then
  say "no C compiler ($cc) found: native kernels not built (tensor stages fall back to tfjs); fix: sudo apt-get install -y gcc, then bash tasks/build_native.sh"
  exit 1
fi
# The hash the loader recomputes: every .c and .h file, sorted by name, concatenated.
hash=$(cd "$src" && LC_ALL=C ls -1 -- *.c *.h | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-64)
mkdir -p "$src/build"
tmp=$(mktemp "$src/build/.librtd_native.XXXXXX")
# -ffp-contract=fast lets the compiler fuse multiply-adds; no -ffast-math, so NaN and Inf behave.
if "$cc" -O3 -march=native -ffp-contract=fast -fno-math-errno -fPIC -shared -pthread \
  -DRTD_SOURCE_HASH="\"$hash\"" -o "$tmp" "$src"/*.c -lm; then
  mv -f "$tmp" "$out"
  say "built $out ($("$cc" --version | head -n 1))"
else
  rm -f "$tmp"
  say "compiling $src/*.c failed (see above): native kernels not built"
  exit 1
fi
