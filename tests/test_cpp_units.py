"""Builds the C++ unit tests (tests/cpp/test_*.cc) with CMake and runs them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT



def _configure_and_build(build: Path, *extra: str, targets: tuple = ()) -> None:
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DLMCODEC_BUILD_TESTS=ON",
                    "-DLMCODEC_BUILD_PYTHON=OFF", "-DCMAKE_BUILD_TYPE=Release", *extra],
                   check=True, capture_output=True, text=True)
    tgt = ["--target", *targets] if targets else []
    r = subprocess.run(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2), *tgt], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cpp_unit_tests(tmp_path_factory):
    build = ROOT / "build" / "ctest"
    _configure_and_build(build)
    r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-4000:]
    assert "tests passed" in r.stdout and "0 tests" not in r.stdout.split("tests passed")[0][-12:]


def _simde_available() -> bool:
    return any(Path(d, "simde", "x86", "avx512.h").is_file()
               for d in ("/usr/include", "/usr/local/include", os.environ.get("SIMDE_INCLUDE", "/nonexistent")))


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
@pytest.mark.skipif(not _simde_available(), reason="SIMDe headers not installed (Debian: libsimde-dev)")
def test_cpp_avx512_kernels_under_emulation():
    """The AVX-512 kernels, built against SIMDe's portable AVX-512 (emulated
    on AVX2), pass every scalar == SIMD check of test_dsp and the whole-codec
    bit-identity of test_paths, under ASan + UBSan where available: the path
    is checked on machines without AVX-512 (like every machine this project
    has run on)."""
    extra = ["-DLMCODEC_AVX512_SIMDE=ON"]
    if os.environ.get("SIMDE_INCLUDE"):
        extra.append(f"-DLMCODEC_SIMDE_INCLUDE={os.environ['SIMDE_INCLUDE']}")
    # under ASan + UBSan where the compiler can: the 16-lane kernels read
    # further past a tile than the 8-lane ones, so out-of-bounds reads are
    # this path's own risk (emulated loads are plain loads to ASan)
    from test_robustness import _compiles_with
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    env = dict(os.environ)
    if cxx and _compiles_with(cxx, ["-fsanitize=address,undefined"], "int main() { return 0; }\n"):
        build = ROOT / "build" / "asan-avx512-simde"
        extra += ["-DLMCODEC_SANITIZE=ON", "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1", "-DCMAKE_C_FLAGS_RELEASE=-O1 -g1"]
        env.update(ASAN_OPTIONS="detect_leaks=0:abort_on_error=1", UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    else:
        build = ROOT / "build" / "ctest-avx512-simde"
    _configure_and_build(build, *extra, targets=("test_dsp", "test_paths"))
    out = {}
    for name in ("test_dsp", "test_paths"):
        r = subprocess.run([str(build / name)], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-4000:]
        assert "all checks passed" in r.stdout
        out[name] = r.stdout
    # the emulated table was among the paths under test
    assert "(avx512 (SIMDe emulation))" in out["test_dsp"]
    assert "x 3 paths" in out["test_dsp"] or "x 2 paths" in out["test_dsp"]
    assert re.search(r"paths: scalar (avx2 )?avx512 -> ", out["test_paths"])


def test_avx512_kernels_use_unaligned_memory_ops_only():
    """SIMDe's emulation does not fault on a misaligned aligned-load, real
    AVX-512 does: the AVX-512 file must use only the unaligned forms (as fast
    on aligned data), so that the emulated test covers what hardware runs."""
    src = (ROOT / "src" / "cpp" / "dsp" / "conv_avx512.cc").read_text()
    aligned = re.findall(r"_mm(?:256|512)?_(?:load|store|stream)_(?:ps|pd|si\d+|epi\d+)\s*\(", src)
    assert aligned == [], aligned
    assert "_mm512_loadu_ps" in src and "_mm512_storeu_ps" in src
