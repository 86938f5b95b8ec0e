#!/usr/bin/env bash
# The AVX-512 check for a machine that has it (the device tool's machines
# have 16 x86-64 cores and CMake, ninja, pybind11, numpy, Pillow; nothing
# can be fetched there). One call, ~3 minutes:
#
#   run(command="bash tools/device_avx512_check.sh", timeout_s=400)
#
# Writes to $OUT (or /tmp/lmc-avx512): the CPU's AVX-512 flags, the native
# (not emulated) test_dsp and test_paths logs -- every scalar == SIMD check
# and the whole-codec bit-identity on real AVX-512 -- and
# benchmarks/kernel_paths.py's AVX-512 / AVX2 timings (1, 2 and 8 threads, the
# packaged sample). Exit status: non-zero when a test failed or the bits
# differ between paths.
set -uo pipefail
out=${OUT:-/tmp/lmc-avx512}
mkdir -p "$out"
grep -o -w 'avx512[a-z0-9_]*' /proc/cpuinfo | sort -u | tr '\n' ' ' | tee "$out/cpu_avx512_flags.txt"; echo
grep -m1 'model name' /proc/cpuinfo | tee -a "$out/cpu_avx512_flags.txt"
py=$(command -v python3)
b=build/device-avx512
cmake -S . -B $b -G Ninja -DCMAKE_BUILD_TYPE=Release -DLMCODEC_BUILD_TESTS=ON -DLMCODEC_BUILD_PYTHON=ON \
  -DPython_EXECUTABLE="$py" -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" >"$out/cmake.txt" 2>&1 || { tail -20 "$out/cmake.txt"; exit 2; }
cmake --build $b -j "$(nproc)" >"$out/build.txt" 2>&1 || { tail -30 "$out/build.txt"; exit 2; }
rc=0
for t in test_dsp test_paths; do
  $b/$t >"$out/$t.txt" 2>&1 || rc=1
  grep -E "paths|active path|all checks passed|check\(s\) failed" "$out/$t.txt"
done
cp $b/_core*.so python/lmcodec/
PYTHONPATH=python "$py" benchmarks/kernel_paths.py --no-scalar --threads 1,2,8 --repeat 7 --json "$out/paths.json" \
  | tee "$out/paths.txt" || rc=1
exit $rc
