#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.cc) with clang, ASan and UBSan
# into build/fuzz (override with LMC_FUZZ_BUILD). Needs fuzz/install_deps.sh.
# Environment: CXX_FUZZ / CC_FUZZ (default clang++-14 / clang-14, else
# clang++ / clang), JOBS (default 2), LMC_FUZZ_CMAKE_ARGS (extra cmake
# options, e.g. -DLMCODEC_FUZZ_DSP_PLAIN=OFF).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${LMC_FUZZ_BUILD:-$ROOT/build/fuzz}
pick() { for c in "$@"; do if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then echo "$c"; return 0; fi; done; return 1; }
CXX_FUZZ=$(pick "${CXX_FUZZ:-}" clang++-14 clang++) || { echo "fuzz/build.sh: clang++ not found; run fuzz/install_deps.sh" >&2; exit 2; }
CC_FUZZ=$(pick "${CC_FUZZ:-}" clang-14 clang) || { echo "fuzz/build.sh: clang not found; run fuzz/install_deps.sh" >&2; exit 2; }
GEN=()
if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi
cmake -S "$ROOT" -B "$BUILD" ${GEN[@]+"${GEN[@]}"} \
  -DCMAKE_C_COMPILER="$CC_FUZZ" -DCMAKE_CXX_COMPILER="$CXX_FUZZ" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLMCODEC_BUILD_PYTHON=OFF -DLMCODEC_BUILD_TESTS=OFF -DLMCODEC_BUILD_FUZZERS=ON ${LMC_FUZZ_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j "${JOBS:-2}" --target fuzz_decode fuzz_rans fuzz_latents
echo "fuzz/build.sh: built fuzz_decode fuzz_rans fuzz_latents in $BUILD"
