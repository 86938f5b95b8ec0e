"""Builds the C++ unit tests (tests/cpp/test_*.cc) with CMake and runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _configure_and_build(build: Path, *extra: str) -> None:
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DLMCODEC_BUILD_TESTS=ON",
                    "-DLMCODEC_BUILD_PYTHON=OFF", "-DCMAKE_BUILD_TYPE=Release", *extra],
                   check=True, capture_output=True, text=True)
    r = subprocess.run(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cpp_unit_tests(tmp_path_factory):
    build = ROOT / "build" / "ctest"
    _configure_and_build(build)
    r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-4000:]
    assert "tests passed" in r.stdout and "0 tests" not in r.stdout.split("tests passed")[0][-12:]
