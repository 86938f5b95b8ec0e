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
    if mode == "I;16":
        im = Image.fromarray(natural(24, 30, channels=1).astype(np.uint16) * 257)
    elif mode == "F":
        im = Image.fromarray(natural(24, 30, channels=1).astype(np.float32) / 255, "F")
    else:
        im = Image.fromarray(natural(24, 30)).convert(mode)
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
    low = tmp_path / "low.lmc"
    im.save(low, quality=1)
    budget = (big.stat().st_size + low.stat().st_size) // 2  # between the extremes: fits at some quality
    small = tmp_path / "small.lmc"
    im.save(small, quality=95, max_bytes=budget)
    assert small.stat().st_size <= budget
    with Image.open(small) as back:
        assert back.size == im.size


def test_damaged_body_opens_and_load_raises_oserror_with_reason(tmp_path):
    from lmcodec.LmcImagePlugin import LmcFileError

    p = tmp_path / "ok.lmc"
    Image.fromarray(natural(48, 64)).save(p, quality=50)
    data = p.read_bytes()
    cut = tmp_path / "cut.lmc"
    cut.write_bytes(data[: len(data) - 40])
    with Image.open(cut) as im:  # the header is sound: open succeeds, size known
        assert im.size == (64, 48)
        with pytest.raises(OSError) as ei:
            im.load()
    assert isinstance(ei.value, LmcFileError) and isinstance(ei.value, lmcodec.LmcError)
    assert "damaged LMC file" in str(ei.value) and "cannot identify" not in str(ei.value)
    flipped = bytearray(data)
    flipped[-20] ^= 0x55  # inside the last chunk: its CRC no longer matches
    (tmp_path / "crc.lmc").write_bytes(bytes(flipped))
    with Image.open(tmp_path / "crc.lmc") as im:
        with pytest.raises(OSError, match="(?i)crc|damaged"):
            im.load()


def test_bad_header_says_why(tmp_path):
    p = tmp_path / "bad.lmc"
    p.write_bytes(b"\x89LMC\r\n\x1a\n" + b"\x01" * 50)
    with pytest.raises(OSError) as ei:
        Image.open(p)
    assert "not a valid LMC file" in str(ei.value) and "cannot identify" not in str(ei.value)


def test_save_keywords_never_silently_lossy(tmp_path):
    im = Image.fromarray(natural(16, 16))
    for kw in ({"lossless": True, "max_error": 1}, {"max_error": 0}, {"lossless": True, "max_bytes": 10 ** 6},
               {"near_lossless": 60}, {"subsampling": 0}):
        p = tmp_path / "k.lmc"
        with pytest.raises(lmcodec.LmcError):
            im.save(p, **kw)
    im.save(tmp_path / "plain.lmc", lossless=False)  # asking for lossy is fine


def test_save_lossless_and_bounded(tmp_path):
    a = natural(23, 31)
    im = Image.fromarray(a)
    im.save(tmp_path / "exact.lmc", lossless=True)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "exact.lmc")), a)
    assert lmcodec.info((tmp_path / "exact.lmc").read_bytes()).coding == "lossless"
    im.save(tmp_path / "near.lmc", max_error=2)
    back = np.asarray(Image.open(tmp_path / "near.lmc")).astype(int)
    assert np.abs(back - a.astype(int)).max() <= 2
    assert lmcodec.info((tmp_path / "near.lmc").read_bytes()).max_error == 2


def test_save_all_single_frame_only(tmp_path):
    im = Image.fromarray(natural(16, 16))
    im.save(tmp_path / "one.lmc", save_all=True)  # one frame: an ordinary file
    assert Image.open(tmp_path / "one.lmc").size == (16, 16)
    with pytest.raises(lmcodec.LmcError, match="single image"):
        im.save(tmp_path / "two.lmc", save_all=True, append_images=[im])


def test_draft_is_an_honest_noop(tmp_path):
    p = tmp_path / "d.lmc"
    Image.fromarray(natural(64, 64)).save(p)
    with Image.open(p) as im:
        assert im.draft("RGB", (16, 16)) is None
        assert im.size == (64, 64)
