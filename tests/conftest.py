"""Shared test helpers: paths, synthetic pictures, PSNR and the stream forger.

Test modules import the plain helpers (``from conftest import ROOT, natural,
psnr``); the fixtures (``forger``) are found by pytest. fuzz/ is put on
sys.path so that ``import forge`` (fuzz/forge.py, the structure-aware
stream forger shared with the fuzzers) works from any test.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import lmcodec
from lmcodec import metrics

ROOT = Path(__file__).resolve().parents[1]          # the repository
DATA = ROOT / "tests" / "data"                      # golden vectors, regressions
MODELS = Path(lmcodec.__file__).resolve().parent / "models"  # the installed package's weights
KODAK = ROOT.parent / "shared" / "data" / "kodak"   # evaluation images (tests may read, never tune on)

if str(ROOT / "fuzz") not in sys.path:
    sys.path.insert(0, str(ROOT / "fuzz"))


def natural(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A smooth synthetic picture with some texture (cheap stand-in for a photo)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([128 + 80 * np.sin(xx / 23 + c) * np.cos(yy / 31 - c) for c in range(3)], -1)
    img = base + rng.normal(0, 6, base.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if channels == 1:
        return img[..., 0].copy()
    return img


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of 8-bit images (lmcodec.metrics.psnr), 99 for identical ones."""
    v = metrics.psnr(a, b)
    return 99.0 if not np.isfinite(v) else float(v)


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def forger():
    """fuzz/forge.py's Forger: valid containers around payloads coded with the models' own tables."""
    import forge

    return forge.Forger()


def raw_chunks(data: bytes):
    """(type, data) of every chunk of a .lmc stream after the signature, HEAD and ENDC included."""
    import struct

    out, pos = [], 8
    while pos < len(data):
        n = struct.unpack_from("<I", data, pos + 4)[0]
        out.append((data[pos:pos + 4], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def build_raw(chunks) -> bytes:
    """A container from raw (type, data) chunks, CRCs computed (no rule checked: the reader's test)."""
    import struct
    import zlib

    b = bytearray(b"\x89LMC\r\n\x1a\n")
    for t, d in chunks:
        body = t + struct.pack("<I", len(d)) + d
        b += body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    return bytes(b)

