#!/usr/bin/env bash
# Checks the AVX-512 f32-activation kernel (src/cpu/kernels-avx512-f32act.cpp) on a CPU without
# AVX-512: compiled against SIMDe's portable emulation of the intrinsics (apt-get install
# libsimde-dev), linked with the core library of the CMake build (npm run test:cpp in native/ makes
# it), and run through engine-test's own checks (test/f32act-checks.cpp). Slow (emulated), a minute or so.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
native="$here/../.."
lib="$native/build/cmake-test/libflotilla_core.a"
[ -f /usr/include/simde/x86/avx512.h ] || { echo "needs SIMDe: apt-get install libsimde-dev" >&2; exit 2; }
[ -f "$lib" ] || { echo "needs $lib: cd native && npm run test:cpp" >&2; exit 2; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# -Davx512=avx512emu: the emulated kernel's names differ from the real ones in the library
g++ -std=c++17 -O2 -I"$here" -Davx512=avx512emu -c "$native/src/cpu/kernels-avx512-f32act.cpp" -o "$out/kernel.o"
g++ -std=c++17 -O2 -DFLOTILLA_HAVE_AVX2 "$here/main.cpp" "$native/test/f32act-checks.cpp" "$native/test/test-weights.cpp" \
  "$out/kernel.o" "$lib" -lpthread -o "$out/check"
"$out/check"
