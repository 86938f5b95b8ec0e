#!/usr/bin/env bash
# Unit test of the WebAssembly kernels: builds tests/cpp/test_dsp.cc (every
# dsp kernel against a naive reference, and every available kernel path
# bit-identical to the portable scalar one, incl. the FMA edge cases of
# test_kernel_fma) with em++ -msimd128 and runs it in Node, so the simd128
# table (src/cpp/dsp/conv_wasm.cc) is compared with the scalar reference.
#
#   tools/test_wasm_kernels.sh            # ~2 min on 2 cores (build), ~1-2 min run
#   JOBS=4 tools/test_wasm_kernels.sh     # parallel compiles (default 2)
#   LMC_WASM_SIMD=0 tools/test_wasm_kernels.sh   # the scalar-only build
#
# The test uses threads (thread pools of 2-3), so this build has -pthread
# (emscripten workers in Node; the decoder build itself has no threads).
# Needs emscripten and node (tools/build_wasm.sh installs them with apt).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SRC="src/cpp"
SIMD="${LMC_WASM_SIMD:-1}"
SIMD_FLAG=""; [ "$SIMD" = 0 ] || SIMD_FLAG="-msimd128"
OBJ="build/wasm/test-obj-$SIMD"
OUT="build/wasm/test-$SIMD"
JOBS="${JOBS:-2}"
command -v em++ >/dev/null 2>&1 || { echo "test_wasm_kernels: em++ missing (run tools/build_wasm.sh once, or apt-get install emscripten)" >&2; exit 2; }
command -v node >/dev/null 2>&1 || { echo "test_wasm_kernels: node missing" >&2; exit 2; }
export NODE_PATH="/usr/share/nodejs:/usr/lib/nodejs${NODE_PATH:+:$NODE_PATH}"
mkdir -p "$OBJ" "$OUT"
CFLAGS=(-O2 $SIMD_FLAG -pthread -ffp-contract=off -fno-math-errno -sDISABLE_EXCEPTION_CATCHING=0
        -I"$SRC" -I"$SRC/include" -Itests/cpp -DLMC_VERSION_STRING="\"test\"")
mapfile -t SOURCES < <(find "$SRC" -name '*.cc' | sort; echo tests/cpp/test_dsp.cc)
objs=(); todo=()
for s in "${SOURCES[@]}"; do
  o="$OBJ/$(echo "$s" | tr '/' '_').o"
  objs+=("$o")
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ "$0" -nt "$o" ] || [ -n "$(find "$SRC" tests/cpp -name '*.h' -newer "$o" -print -quit)" ]; then
    todo+=("$s|$o")
  fi
done
export CFLAGS_STR="${CFLAGS[*]}"
if [ ${#todo[@]} -gt 0 ]; then
  echo "test_wasm_kernels: compiling ${#todo[@]} of ${#SOURCES[@]} sources (jobs $JOBS)" >&2
  printf '%s\n' "${todo[@]}" | xargs -P "$JOBS" -I{} bash -c '
    s="${1%%|*}"; o="${1##*|}"
    nice -n 10 em++ -std=c++17 $CFLAGS_STR -c "$s" -o "$o"' _ {}
fi
nice -n 10 em++ "${CFLAGS[@]}" "${objs[@]}" -o "$OUT/test_dsp.js" \
  -sPROXY_TO_PTHREAD=1 -sPTHREAD_POOL_SIZE=8 -sEXIT_RUNTIME=1 -sALLOW_MEMORY_GROWTH=1 \
  -sINITIAL_MEMORY=256MB -sMAXIMUM_MEMORY=2GB -sENVIRONMENT=node,worker 2>&1 | grep -v "USE_PTHREADS + ALLOW_MEMORY_GROWTH" >&2 || true
echo "test_wasm_kernels: running $OUT/test_dsp.js in node" >&2
# (--no-experimental-fetch: this emscripten loads the .wasm with fetch() whenever it exists, which in
# Node cannot read a file path)
node --no-experimental-fetch "$OUT/test_dsp.js" "$@"
