"""The C embedding example (examples/c/roundtrip.c) builds against the core
library's public header and round-trips an image with the shipped weights."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import lmcodec
from conftest import MODELS, ROOT



def build_example(target: str) -> Path:
    """Builds one of examples/c's programs against the core library; its path."""
    build = ROOT / "build" / "c-example"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DLMCODEC_BUILD_PYTHON=OFF",
                    "-DLMCODEC_BUILD_EXAMPLES=ON", "-DCMAKE_BUILD_TYPE=Release"], check=True, capture_output=True)
    r = subprocess.run(["cmake", "--build", str(build), "--target", target, "-j", str(os.cpu_count() or 2)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return build / target


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
@pytest.mark.parametrize("model", ["hyperprior", "pca"])
def test_c_example_roundtrip(model, tmp_path):
    exe = build_example("lmc_roundtrip")
    out = tmp_path / "c.lmc"
    r = subprocess.run([str(exe), str(MODELS / f"{model}.lmw"), "60", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "bpp" in r.stdout and "damaged stream refused" in r.stdout
    # the C program's stream is a normal .lmc file for the Python side too
    data = out.read_bytes()
    assert lmcodec.info(data).width == 160
    assert lmcodec.decode(data).shape == (120, 160, 3)


def _read_pnm(path: Path):
    import numpy as np
    data = path.read_bytes()
    if data.startswith(b"P7"):
        head, _, body = data.partition(b"ENDHDR\n")
        fields = dict(line.split(b" ", 1) for line in head.split(b"\n")[1:] if b" " in line)
        w, h, c = int(fields[b"WIDTH"]), int(fields[b"HEIGHT"]), int(fields[b"DEPTH"])
    else:
        magic, dims, _maxval, body = data.split(b"\n", 3)
        w, h = map(int, dims.split())
        c = 1 if magic == b"P5" else 3
    arr = np.frombuffer(body, np.uint8).reshape(h, w, c)
    return arr[:, :, 0] if c == 1 else arr


@pytest.fixture(scope="module")
def c_decode():
    return build_example("lmc_decode")


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
@pytest.mark.parametrize("channels,method", [(3, "hyperprior"), (1, "hyperprior"), (4, "hyperprior"), (3, "pca")])
def test_c_decode_finds_the_model_and_reads_metadata(c_decode, tmp_path, channels, method):
    """The C API alone: lmc_model_open_for_stream finds the stream's weights in a search path,
    lmc_decode gives the Python decoder's pixels, lmc_read_metadata the bytes the encoder was given."""
    import numpy as np
    rng = np.random.default_rng(channels)
    shape = (37, 53) if channels == 1 else (37, 53, channels)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    icc, exif, xmp = bytes(range(256)) * 3, b"II*\x00" + bytes(40), "<x:xmpmeta>é</x:xmpmeta>".encode()
    data = lmcodec.encode(img, 60, method=method, icc_profile=icc, exif=exif, xmp=xmp)
    src = tmp_path / "in.lmc"
    src.write_bytes(data)
    out = tmp_path / "out.pnm"
    r = subprocess.run([str(c_decode), str(src), str(out), f"/nonexistent:{MODELS}"], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "LMCODEC_MODEL_PATH"})
    assert r.returncode == 0, r.stderr
    assert f"icc {len(icc)}, exif {len(exif)}, xmp {len(xmp)} bytes" in r.stdout
    np.testing.assert_array_equal(_read_pnm(out), lmcodec.decode(data))
    assert (tmp_path / "out.pnm.icc").read_bytes() == icc
    assert (tmp_path / "out.pnm.exif").read_bytes() == exif
    assert (tmp_path / "out.pnm.xmp").read_bytes() == xmp


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_c_decode_finds_archived_models_and_refuses_unknown_ones(c_decode, tmp_path):
    """An old stream names an archived weights file (hyperprior-<id>.lmw): the search finds it, also through
    $LMCODEC_MODEL_PATH; a directory without the stream's model gives one clear error."""
    import numpy as np
    golden = ROOT / "tests" / "data" / "golden_hyperprior-a14cd2ac725fb59b.lmc"
    out = tmp_path / "old.pnm"
    env = dict(os.environ, LMCODEC_MODEL_PATH=str(MODELS))
    r = subprocess.run([str(c_decode), str(golden), str(out)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "model a14cd2ac" in r.stdout
    np.testing.assert_array_equal(_read_pnm(out), lmcodec.decode(golden.read_bytes()))
    empty = tmp_path / "none"
    empty.mkdir()
    (empty / "junk.lmw").write_bytes(b"not weights")
    r = subprocess.run([str(c_decode), str(golden), str(out), str(empty)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "no weights file with model id a14cd2ac725fb59b" in r.stderr
