"""The lmcodec command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

import lmcodec
from lmcodec.__main__ import main
from test_api import natural


def test_encode_decode_info(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(natural(48, 64)).save(src)
    out = tmp_path / "o.lmc"
    assert main(["encode", str(src), "-o", str(out), "-q", "60", "-v"]) == 0
    line = capsys.readouterr().err  # status lines go to stderr (stdout may carry a stream)
    assert "bytes" in line and "bpp" in line and "MP/s" in line and "PSNR" in line
    assert main(["info", str(out)]) == 0
    assert "64x48 RGB" in capsys.readouterr().out
    png = tmp_path / "o.png"
    assert main(["decode", str(out), "-o", str(png)]) == 0
    assert np.asarray(Image.open(png)).shape == (48, 64, 3)


def test_encode_no_rdo(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(natural(64, 80, 4)).save(src)
    a, b = tmp_path / "a.lmc", tmp_path / "b.lmc"
    assert main(["encode", str(src), "-o", str(a), "-q", "50"]) == 0
    assert main(["encode", str(src), "-o", str(b), "-q", "50", "--no-rdo"]) == 0
    assert a.stat().st_size < b.stat().st_size
    assert b.read_bytes() == lmcodec.encode(np.asarray(Image.open(src)), 50, rdo=False)


def test_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.lmc"
    bad.write_bytes(b"nonsense")
    assert main(["decode", str(bad), "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lmcodec: error:") and err.count("\n") == 1
    assert main(["info", str(tmp_path / "missing.lmc")]) == 1
    assert main(["encode", str(bad), "-o", str(tmp_path / "y.lmc")]) == 1


def test_demo(tmp_path):
    r = subprocess.run([sys.executable, "-m", "lmcodec", "demo", "-o", str(tmp_path / "demo"), "-q", "50"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "lmcodec" in r.stdout and "JPEG" in r.stdout
    assert list((tmp_path / "demo").glob("*.lmc")) and list((tmp_path / "demo").glob("*.png"))


def test_version_names_model_and_kernels():
    r = subprocess.run([sys.executable, "-m", "lmcodec", "--version"], capture_output=True, text=True, check=True)
    line = r.stdout.strip()
    assert line.startswith(f"lmcodec {lmcodec.__version__} (model {lmcodec.model_info()['model_id'][:16]}")
    assert f"kernels {lmcodec.kernel_path()}" in line and ", ".join(lmcodec.kernel_paths()) in line
    assert "\n" not in line


def test_encode_max_bytes(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(natural(64, 80, 9)).save(src)
    out = tmp_path / "o.lmc"
    budget = len(lmcodec.encode(np.asarray(Image.open(src)), 90)) // 2
    assert main(["encode", str(src), "-o", str(out), "-q", "90", "--max-bytes", str(budget)]) == 0
    assert out.stat().st_size <= budget and ", quality " in capsys.readouterr().err
    assert main(["encode", str(src), "-o", str(out), "--max-bytes", "10"]) != 0
    assert "cannot fit" in capsys.readouterr().err
