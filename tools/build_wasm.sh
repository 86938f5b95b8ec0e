#!/usr/bin/env bash
# Builds the WebAssembly decoder: web/dist/lmcodec_core.{mjs,wasm} (emscripten)
# plus web/dist/lmcodec.mjs (the JS API, copied from web/lmcodec.mjs), its
# worker web/dist/worker.mjs (decodeInWorker) and
# web/dist/models/*.lmw (the weights, for pages served from web/).
#
#   tools/build_wasm.sh            # build (installs emscripten/nodejs with apt if missing)
#   JOBS=4 tools/build_wasm.sh     # parallel compiles (default 2)
#   LMC_SRC=/path/src/cpp tools/build_wasm.sh   # another source tree (default src/cpp)
#   LMC_WASM_SIMD=0 tools/build_wasm.sh  # no SIMD128 (browsers without WASM SIMD; slower)
#   LMC_WASM_OUT=dir tools/build_wasm.sh # output folder (default web/dist)
#
# The C++ core is compiled with em++ straight from the sources (every
# src/cpp/**/*.cc; the *_avx2.cc / *_avx512.cc files compile to their
# "not built" stubs because LMC_HAVE_X86 is not defined), so the portable
# scalar kernels run: bit-exact with the native SIMD paths given
# -ffp-contract=off. Nothing under src/ or CMakeLists.txt is touched.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SRC="${LMC_SRC:-src/cpp}"
OUT="${LMC_WASM_OUT:-web/dist}"
SIMD="${LMC_WASM_SIMD:-1}"
SIMD_FLAG=""; [ "$SIMD" = 0 ] || SIMD_FLAG="-msimd128"
OBJ="build/wasm/obj/$(printf %s "$SRC:$SIMD" | md5sum | cut -c1-8)"
JOBS="${JOBS:-2}"

need_apt=()
command -v em++ >/dev/null 2>&1 || need_apt+=(emscripten)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "build_wasm: installing ${need_apt[*]} (apt)" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian's emscripten runs its JS tools (acorn-optimizer) with the system node;
# their modules (node-acorn) live in /usr/share/nodejs, which a node not from
# Debian's own nodejs package does not search by itself.
export NODE_PATH="/usr/share/nodejs:/usr/lib/nodejs${NODE_PATH:+:$NODE_PATH}"
mkdir -p "$OBJ" "$OUT/models"
EMXX="em++"

# -O3, no FP contraction (the portable kernels emulate FMA exactly: a
# contracted a*b+c would change bits), WASM SIMD128 for the compiler's
# auto-vectorisation (IEEE lanes: same results), C++ exceptions caught (the C
# API turns them into lmc_status codes; Debian's emscripten ships prebuilt,
# frozen system libraries with JS-based exception support, not wasm EH).
CFLAGS=(-O3 $SIMD_FLAG -ffp-contract=off -fno-math-errno -sDISABLE_EXCEPTION_CATCHING=0
        -I"$SRC" -I"$SRC/include" -DNDEBUG -DLMC_VERSION_STRING="\"$(sed -n 's/^__version__ = "\(.*\)"/\1/p' python/lmcodec/_version.py)\"")

mapfile -t SOURCES < <(find "$SRC" -name '*.cc' | sort)
[ ${#SOURCES[@]} -gt 0 ] || { echo "build_wasm: no sources under $SRC" >&2; exit 1; }
objs=()
todo=()
for s in "${SOURCES[@]}"; do
  o="$OBJ/$(echo "${s#$SRC/}" | tr '/' '_').o"
  objs+=("$o")
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ "$0" -nt "$o" ] || [ -n "$(find "$SRC" -name '*.h' -newer "$o" -print -quit)" ]; then
    todo+=("$s|$o")
  fi
done
export EMXX
export CFLAGS_STR="${CFLAGS[*]}"
if [ ${#todo[@]} -gt 0 ]; then
  echo "build_wasm: compiling ${#todo[@]} of ${#SOURCES[@]} sources (jobs $JOBS)" >&2
  printf '%s\n' "${todo[@]}" | xargs -P "$JOBS" -I{} bash -c '
    s="${1%%|*}"; o="${1##*|}"
    echo "  em++ $s" >&2
    nice -n 10 $EMXX -std=c++17 $CFLAGS_STR -c "$s" -o "$o"' _ {}
fi
nice -n 10 emcc "${CFLAGS[@]}" -c web/lmc_wasm.c -o "$OBJ/lmc_wasm.o"
nice -n 10 $EMXX -std=c++17 "${CFLAGS[@]}" -c web/lmc_wasm_profile.cc -o "$OBJ/lmc_wasm_profile.o"

# ENVIRONMENT=web,worker also serves Node: web/lmcodec.mjs reads the .wasm itself
# and hands it over (wasmBinary), so the core needs no require/__dirname and
# installs no process-wide handlers in Node.
EXPORTS='["_malloc","_free","_lmcw_info","_lmcw_model_open","_lmcw_model_describe","_lmcw_model_close","_lmcw_decode","_lmcw_last_error","_lmcw_version","_lmcw_kernels","_lmcw_set_kernels","_lmcw_profile_enable","_lmcw_profile_take","_lmcw_free"]'
nice -n 10 $EMXX -O3 $SIMD_FLAG -sDISABLE_EXCEPTION_CATCHING=0 "${objs[@]}" "$OBJ/lmc_wasm.o" "$OBJ/lmc_wasm_profile.o" -o "$OUT/lmcodec_core.mjs" \
  -sMODULARIZE=1 -sEXPORT_ES6=1 -sEXPORT_NAME=createLmcCore \
  -sENVIRONMENT=web,worker -sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=64MB -sMAXIMUM_MEMORY=4GB \
  -sFILESYSTEM=0 -sEXPORTED_FUNCTIONS="$EXPORTS" \
  -sEXPORTED_RUNTIME_METHODS='["HEAPU8","HEAPU32","UTF8ToString"]'
cp web/lmcodec.mjs "$OUT/lmcodec.mjs"
cp web/worker.mjs "$OUT/worker.mjs"   # decodeInWorker()'s worker
cp python/lmcodec/models/*.lmw "$OUT/models/"
mkdir -p "$OUT/samples" && cp tests/data/golden_pca.lmc "$OUT/samples/"   # element.html's default
ls -l "$OUT" >&2
echo "build_wasm: done: $OUT/lmcodec.mjs" >&2
