"""Lossless (lossless=True) and near-lossless (max_error=k) coding: the RESD
chunk (src/cpp/core/residual.*, docs/lossless.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

import lmcodec
from lmcodec import _core
from conftest import KODAK, natural




def kodak_crop(name: str = "kodim23.png", size: int = 160) -> np.ndarray:
    p = KODAK / name
    if not p.exists():
        pytest.skip("Kodak images not available")
    a = np.asarray(Image.open(p).convert("RGB"))
    return np.ascontiguousarray(a[100:100 + size, 200:200 + size])


def roundtrip(a: np.ndarray, **kw) -> np.ndarray:
    out = lmcodec.decode(lmcodec.encode(a, **kw))
    assert out.shape == a.shape and out.dtype == np.uint8
    return out


def text_image(h: int = 61, w: int = 203) -> np.ndarray:
    im = Image.new("RGB", (w, h), (250, 250, 245))
    d = ImageDraw.Draw(im)
    for i in range(4):
        d.text((4, 2 + 14 * i), f"lmcodec lossless line {i}: 0123456789 ABC xyz", fill=(10 * i, 20, 90))
    d.line((0, h - 3, w, h - 3), fill=(200, 0, 0), width=2)
    return np.asarray(im)


def gradient(h: int = 50, w: int = 77, channels: int = 3) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([(xx * 255) // (w - 1), (yy * 255) // (h - 1), ((xx + yy) * 3) % 256], -1).astype(np.uint8)
    return a[..., :channels] if channels > 1 else a[..., 0].copy()


@pytest.mark.parametrize("make", [
    lambda: kodak_crop("kodim23.png"),
    lambda: kodak_crop("kodim05.png", 97),
    lambda: natural(45, 67),
    lambda: natural(33, 21, channels=1),
    lambda: np.dstack([natural(19, 40), np.linspace(0, 255, 19 * 40).reshape(19, 40).astype(np.uint8)]),
    lambda: np.zeros((1, 1, 3), np.uint8),
    lambda: np.full((1, 1), 200, np.uint8),
    lambda: np.full((1, 1, 4), 7, np.uint8),
    lambda: np.full((64, 64, 3), 131, np.uint8),
    lambda: np.random.default_rng(1).integers(0, 256, (31, 29, 3), dtype=np.uint8),
    lambda: np.random.default_rng(2).integers(0, 256, (17, 300), dtype=np.uint8),
    lambda: text_image(),
    lambda: gradient(),
    lambda: gradient(channels=1),
    lambda: np.ascontiguousarray(natural(300, 7)),  # several strips, narrow
    lambda: np.ascontiguousarray(natural(3, 301)),
    lambda: np.where(np.indices((40, 41)).sum(0)[..., None] % 2 == 0, 0, 255).astype(np.uint8).repeat(3, 2),
])
def test_lossless_is_exact(make):
    a = make()
    out = roundtrip(a, lossless=True)
    assert np.array_equal(out, a)


@pytest.mark.parametrize("k", [1, 2, 4, 7, 255])
@pytest.mark.parametrize("make", [lambda: kodak_crop("kodim23.png", 128), lambda: natural(40, 53, channels=1),
                                  lambda: np.dstack([natural(20, 30), natural(20, 30, 5, 1)]), text_image,
                                  lambda: np.random.default_rng(3).integers(0, 256, (9, 13, 3), dtype=np.uint8)])
def test_max_error_bounds_every_sample(make, k):
    a = make()
    out = roundtrip(a, max_error=k)
    err = np.abs(out.astype(int) - a.astype(int))
    if a.ndim == 3 and a.shape[2] == 4:
        assert np.array_equal(out[..., 3], a[..., 3])  # alpha stays exact
    assert err.max() <= k


def test_bpp_falls_strictly_with_k_on_a_photo():
    a = kodak_crop("kodim23.png", 256)
    sizes = [len(lmcodec.encode(a, lossless=True))] + [len(lmcodec.encode(a, max_error=k)) for k in (1, 2, 4)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4, sizes
    # and beats a lossless baseline that needs no model: PNG
    import io
    png = io.BytesIO()
    Image.fromarray(a).save(png, format="PNG", optimize=True)
    assert sizes[0] < len(png.getvalue())


def test_info_reports_mode_and_bound():
    a = natural(24, 24)
    assert lmcodec.info(lmcodec.encode(a, quality=60)).coding == "lossy"
    assert lmcodec.info(lmcodec.encode(a, quality=60)).max_error is None
    i = lmcodec.info(lmcodec.encode(a, lossless=True))
    assert (i.coding, i.max_error, "RESD" in i.sections, "LATN" in i.sections) == ("lossless", 0, True, False)
    i = lmcodec.info(lmcodec.encode(a, max_error=3), sections=False)
    assert (i.coding, i.max_error) == ("near-lossless", 3)


@pytest.mark.parametrize("kw", [dict(lossless=True, max_error=1), dict(max_error=0), dict(max_error=256),
                                dict(max_error=1.5), dict(max_error=True), dict(lossless="yes"),
                                dict(lossless=True, max_bytes=100000), dict(max_error=2, max_bytes=100000),
                                dict(lossless=True, quality_map=np.zeros((1, 1))), dict(max_error=1, roi="auto")])
def test_bad_mode_arguments_are_refused(kw):
    with pytest.raises(lmcodec.LmcError):
        lmcodec.encode(natural(8, 8), **kw)


def test_metadata_and_pca_method_work_with_lossless():
    a = natural(16, 20)
    d = lmcodec.encode(a, lossless=True, method="pca", icc_profile=b"icc!", exif=b"II*\x00abc")
    assert np.array_equal(lmcodec.decode(d), a)
    assert lmcodec.info(d).metadata["icc_profile"] == b"icc!"


def test_threads_give_the_same_bits():
    a = np.ascontiguousarray(kodak_crop("kodim23.png", 300))  # 3 strips
    streams = {t: lmcodec.encode(a, lossless=True, threads=t) for t in (1, 2, 3)}
    assert streams[1] == streams[2] == streams[3]
    near = {t: lmcodec.encode(a, max_error=2, threads=t) for t in (1, 2)}
    assert near[1] == near[2]
    for d in (streams[1], near[1]):
        assert np.array_equal(lmcodec.decode(d, threads=1), lmcodec.decode(d, threads=2))


def test_kernel_paths_give_the_same_bits():
    a = natural(70, 90)
    code = ("import sys, lmcodec, numpy as np; from conftest import natural; a = natural(70, 90); "
            "sys.stdout.buffer.write(lmcodec.encode(a, max_error=1) + lmcodec.encode(a, lossless=True))")
    outs = set()
    for path in ["scalar"] + [p for p in lmcodec.kernel_paths() if p != "scalar"] + ["auto"]:
        env = dict(__import__("os").environ, LMCODEC_KERNELS=path)
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True,
                           cwd=Path(__file__).parent)
        outs.add(r.stdout)
    assert len(outs) == 1
    assert outs.pop() == lmcodec.encode(a, max_error=1) + lmcodec.encode(a, lossless=True)


def resd_of(data: bytes):
    header, chunks = _core.internal.container_read(data)
    chunks = [(t if isinstance(t, bytes) else t.encode("ascii"), bytes(c)) for t, c in chunks]
    i = [t for t, _ in chunks].index(b"RESD")
    return header, chunks, i


def with_resd(data: bytes, payload: bytes) -> bytes:
    header, chunks, i = resd_of(data)
    chunks[i] = (b"RESD", payload)
    return _core.internal.container_write(header, chunks)


@pytest.fixture(scope="module")
def stream():
    return lmcodec.encode(np.ascontiguousarray(kodak_crop("kodim23.png", 150)), lossless=True)


def test_damaged_residual_chunk_fails_the_crc(stream):
    start = stream.index(b"RESD")
    for off in range(start + 8, len(stream) - 20, 997):
        bad = bytearray(stream)
        bad[off] ^= 0x10
        with pytest.raises(lmcodec.LmcError):
            lmcodec.decode(bytes(bad))


def test_truncated_residual_payload_is_refused(stream):
    _, chunks, i = resd_of(stream)
    payload = chunks[i][1]
    for cut in list(range(0, 40)) + list(range(40, len(payload), max(1, len(payload) // 50))):
        with pytest.raises(lmcodec.LmcError):
            lmcodec.decode(with_resd(stream, payload[:cut]))
    with pytest.raises(lmcodec.LmcError):
        lmcodec.decode(with_resd(stream, payload + b"\x00"))


def test_forged_residual_payload_never_crashes(stream):
    """Rewritten bytes with a recomputed CRC are not damage the CRC can see:
    the decoder must still end in LmcError or a picture of the header's size,
    never a crash, a hang or an out-of-range read."""
    _, chunks, i = resd_of(stream)
    payload = chunks[i][1]
    rng = np.random.default_rng(0)
    errors = 0
    for _ in range(60):
        bad = bytearray(payload)
        for off in rng.integers(0, len(bad), 3):
            bad[int(off)] = int(rng.integers(0, 256))
        try:
            out = lmcodec.decode(with_resd(stream, bytes(bad)))
            assert out.shape == (150, 150, 3)
        except lmcodec.LmcError:
            errors += 1
    assert errors > 40  # the rANS end-state check catches nearly every forgery
    for method in (2, 255):  # an unknown coding method: refused, not misread
        with pytest.raises(lmcodec.LmcError, match="unknown coding method"):
            lmcodec.decode(with_resd(stream, bytes([method]) + payload[1:]))


def test_residual_beside_latents_is_refused(stream):
    header, chunks, i = resd_of(stream)
    lossy = _core.internal.container_read(lmcodec.encode(kodak_crop("kodim23.png", 150), quality=50))[1]
    extra = [(t if isinstance(t, bytes) else t.encode("ascii"), bytes(c)) for t, c in lossy]
    with pytest.raises(lmcodec.LmcError):
        lmcodec.decode(_core.internal.container_write(header, chunks + extra))
    with pytest.raises(lmcodec.LmcError):  # the writer refuses it too
        _core.internal.container_write(header, [chunks[i], chunks[i]])


def test_lossy_streams_do_not_change():
    a = natural(40, 48)
    assert lmcodec.info(lmcodec.encode(a, quality=70)).sections.keys() & {"LATN", "LATC"}
    assert lmcodec.encode(a, quality=70) == lmcodec.encode(a, quality=70, lossless=False, max_error=None)


dims = st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([0, 1, 3, 4]))


@settings(max_examples=40, deadline=None)
@given(dims.flatmap(lambda s: hnp.arrays(np.uint8, s[:2] if s[2] == 0 else s,
                                         elements=st.integers(0, 255))), st.sampled_from([0, 1, 3]))
def test_hypothesis_arrays(a, k):
    a = np.ascontiguousarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = np.ascontiguousarray(a[..., 0])
    out = roundtrip(a, lossless=True) if k == 0 else roundtrip(a, max_error=k)
    assert np.abs(out.astype(int) - a.astype(int)).max() <= k


def test_cli_lossless_and_max_error(tmp_path):
    from test_cli_safety import run

    a = natural(30, 41)
    Image.fromarray(a).save(tmp_path / "p.png")
    assert run("encode", "p.png", "-o", "exact.lmc", "--lossless", cwd=tmp_path).returncode == 0
    assert run("encode", "p.png", "-o", "near.lmc", "--max-error", "3", cwd=tmp_path).returncode == 0
    assert run("decode", "exact.lmc", "-o", "exact.png", cwd=tmp_path).returncode == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "exact.png")), a)
    near = lmcodec.decode((tmp_path / "near.lmc").read_bytes()).astype(int)
    assert np.abs(near - a.astype(int)).max() <= 3
    info = run("info", "exact.lmc", "near.lmc", cwd=tmp_path).stdout.decode()
    assert "lossless" in info and "near-lossless, max error 3" in info
    assert run("encode", "p.png", "-o", "bad.lmc", "--max-error", "0", cwd=tmp_path).returncode != 0


def test_bench_lossless_rows(tmp_path, capsys):
    from lmcodec.bench.cli import main_bench

    (tmp_path / "img").mkdir()
    Image.fromarray(natural(24, 40)).save(tmp_path / "img" / "a.png")
    report = tmp_path / "r.md"
    assert main_bench([str(tmp_path / "img"), "--lossless", "--quiet", "--report", str(report)]) == 0
    text = report.read_text()
    assert "| lmcodec lossless=True |" in text and "PNG (Pillow, optimize=True)" in text
    row = [ln for ln in text.splitlines() if ln.startswith("| lmcodec lossless=True |")][0]
    assert row.endswith("| yes |")  # exactness is measured, not assumed
    for k in (1, 2, 4):
        assert f"\n| {k} | " in text
