"""The Pillow plugin: open / save / lazy loading / metadata / modes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import lmcodec  # noqa: F401  (registers the plugin)
from test_api import natural


def test_registered():
    assert "LMC" in Image.OPEN and "LMC" in Image.SAVE
    assert Image.registered_extensions()[".lmc"] == "LMC"
    assert Image.MIME["LMC"] == "image/x-lmc"


def test_save_and_open(tmp_path):
    im = Image.fromarray(natural(60, 80))
    p = tmp_path / "x.lmc"
    im.save(p, quality=50)
    with Image.open(p) as back:
        assert back.format == "LMC" and back.size == (80, 60) and back.mode == "RGB"
        assert back.info["quality"] == 50
        back.load()
        assert np.asarray(back).shape == (60, 80, 3)
    buf = io.BytesIO()
    im.save(buf, format="LMC", quality=30)
    assert buf.getvalue()[:8] == b"\x89LMC\r\n\x1a\n"
    assert len(buf.getvalue()) < p.stat().st_size


def test_save_rdo_switch(tmp_path):
    im = Image.fromarray(natural(64, 96, 3))
    a, b = io.BytesIO(), io.BytesIO()
    im.save(a, format="LMC", quality=50)
    im.save(b, format="LMC", quality=50, rdo=False)
    assert a.getvalue() == lmcodec.encode(np.asarray(im), 50)
    assert b.getvalue() == lmcodec.encode(np.asarray(im), 50, rdo=False)
    assert len(a.getvalue()) < len(b.getvalue())
    with Image.open(b) as back:
        assert back.size == (96, 64)


def test_open_is_lazy(monkeypatch, tmp_path):
    p = tmp_path / "y.lmc"
    Image.fromarray(natural(40, 40)).save(p)
    calls = []
    import lmcodec._api as api

    real = api.decode
    monkeypatch.setattr(api, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    with Image.open(p) as im:
        assert im.size == (40, 40) and calls == []
        im.load()
        assert calls == [1]


def test_decompression_bomb_check(tmp_path):
    p = tmp_path / "big.lmc"
    Image.fromarray(natural(64, 64)).save(p)
    old = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 1000
        with pytest.raises(Image.DecompressionBombError):
            Image.open(p)
    finally:
        Image.MAX_IMAGE_PIXELS = old


def test_metadata_preserved(tmp_path):
    im = Image.fromarray(natural(32, 32))
    exif = Image.Exif()
    exif[0x010E] = "lmcodec test"  # ImageDescription
    p = tmp_path / "m.lmc"
    icc = b"\0\0\0\x10fake icc profile"
    im.save(p, icc_profile=icc, exif=exif, xmp=b"<x:xmpmeta/>")
    with Image.open(p) as back:
        assert back.info["icc_profile"] == icc
        assert back.getexif()[0x010E] == "lmcodec test"
        assert back.info["xmp"] == b"<x:xmpmeta/>"
    # re-saving keeps the image's own metadata
    with Image.open(p) as back:
        back.load()
        q = tmp_path / "m2.lmc"
        back.save(q)
    with Image.open(q) as again:
        assert again.info["icc_profile"] == icc


@pytest.mark.parametrize("mode,expect", [("L", "L"), ("RGB", "RGB"), ("RGBA", "RGBA"), ("P", "RGB"),
                                          ("1", "L"), ("CMYK", "RGB"), ("LA", "RGBA"), ("I;16", "L"), ("F", "L")])
def test_modes(tmp_path, mode, expect):
    im = Image.fromarray(natural(24, 30)).convert(mode) if mode not in ("I;16", "F") else \
        Image.fromarray((natural(24, 30, channels=1).astype(np.uint16) * 257)).convert(mode if mode == "F" else "I;16")
    p = tmp_path / f"m_{mode.replace(';', '')}.lmc"
    im.save(p)
    with Image.open(p) as back:
        assert back.mode == expect and back.size == (30, 24)
        back.load()


def test_thumbnail(tmp_path):
    p = tmp_path / "t.lmc"
    Image.fromarray(natural(120, 160)).save(p)
    with Image.open(p) as im:
        im.thumbnail((40, 40))
        assert max(im.size) == 40


def test_garbage_is_not_opened(tmp_path):
    p = tmp_path / "bad.lmc"
    p.write_bytes(b"\x89LMC\r\n\x1a\n" + b"\xff" * 50)
    with pytest.raises(Exception) as ei:
        Image.open(p)
    assert isinstance(ei.value, (OSError, SyntaxError, ValueError))


def test_save_with_a_size_budget(tmp_path):
    im = Image.fromarray(np.asarray(Image.linear_gradient("L").resize((96, 64)).convert("RGB")))
    big = tmp_path / "big.lmc"
    im.save(big, quality=95)
    budget = big.stat().st_size // 2
    small = tmp_path / "small.lmc"
    im.save(small, quality=95, max_bytes=budget)
    assert small.stat().st_size <= budget
    with Image.open(small) as back:
        assert back.size == im.size
