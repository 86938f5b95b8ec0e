"""The C embedding example (examples/c/roundtrip.c) builds against the core
library's public header and round-trips an image with the shipped weights."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import lmcodec

ROOT = Path(__file__).resolve().parents[1]
MODELS = Path(lmcodec.__file__).resolve().parent / "models"


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
@pytest.mark.parametrize("model", ["hyperprior", "pca"])
def test_c_example_roundtrip(model, tmp_path):
    build = ROOT / "build" / "c-example"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DLMCODEC_BUILD_PYTHON=OFF",
                    "-DLMCODEC_BUILD_EXAMPLES=ON", "-DCMAKE_BUILD_TYPE=Release"], check=True, capture_output=True)
    r = subprocess.run(["cmake", "--build", str(build), "--target", "lmc_roundtrip", "-j", str(os.cpu_count() or 2)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    exe = build / "lmc_roundtrip"
    out = tmp_path / "c.lmc"
    r = subprocess.run([str(exe), str(MODELS / f"{model}.lmw"), "60", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "bpp" in r.stdout and "damaged stream refused" in r.stdout
    # the C program's stream is a normal .lmc file for the Python side too
    data = out.read_bytes()
    assert lmcodec.info(data).width == 160
    assert lmcodec.decode(data).shape == (120, 160, 3)
