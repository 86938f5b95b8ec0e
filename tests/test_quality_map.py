"""Spatial quality maps (QMAP chunk, docs/format.md): round trip, the map
path's bit-exactness, ROI gain at equal size, damaged maps, old streams."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import lmcodec
from conftest import build_raw, load_benchmark, raw_chunks
from lmcodec import _quality_map
from lmcodec.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"


def _photo(h=192, w=256):
    from PIL import Image

    im = Image.open(ROOT / "python" / "lmcodec" / "data" / "photo.png").convert("RGB")
    return np.asarray(im)[:h, :w].copy()


_chunks = raw_chunks
_build = build_raw


def _map(img, inside=20, outside=-10):
    rows, cols = _quality_map.grid(*img.shape[:2])
    m = np.full((rows, cols), outside, np.int8)
    m[: rows // 2, : cols // 2] = inside
    return m


def test_round_trip_the_decoder_reads_the_map():
    img = _photo()
    m = _map(img)
    data = lmcodec.encode(img, 50, quality_map=m)
    kinds = [t for t, _ in _chunks(data)]
    assert kinds.index(b"QMAP") < kinds.index(b"SIDE")
    assert "QMAP" in lmcodec.info(data).sections
    ex = lmcodec.explain(data)
    np.testing.assert_array_equal(ex.quality_map, m)
    out = lmcodec.decode(data)
    np.testing.assert_array_equal(out, ex.decoded)
    # the map is part of the decode: without it the same payload decodes to another picture
    stripped = _build([(t, d) for t, d in _chunks(data) if t != b"QMAP"])
    assert not np.array_equal(lmcodec.decode(stripped), out)
    # and the block qualities do what they say: the upper-left quarter is sharper
    r, c = 64 * (m.shape[0] // 2), 64 * (m.shape[1] // 2)
    plain = lmcodec.decode(lmcodec.encode(img, 50))
    assert psnr(out[:r, :c], img[:r, :c]) > psnr(plain[:r, :c], img[:r, :c]) + 0.5
    assert psnr(out[r:, c:], img[r:, c:]) < psnr(plain[r:, c:], img[r:, c:])


def test_no_map_streams_unchanged_and_a_zero_map_codes_the_same_payload():
    img = _photo(128, 192)
    plain = lmcodec.encode(img, 60)
    assert lmcodec.encode(img, 60, quality_map=None, roi=None) == plain
    zero = lmcodec.encode(img, 60, quality_map=np.zeros((2, 3)))
    a = {t: d for t, d in _chunks(plain)}
    b = {t: d for t, d in _chunks(zero)}
    # the per-block gain / RDO path with every block at the header's quality is the per-channel path, bit for bit
    assert a[b"SIDE"] == b[b"SIDE"] and a.get(b"LATN") == b.get(b"LATN") and a.get(b"LATC") == b.get(b"LATC")
    assert b[b"QMAP"] == bytes([6, 0, 3, 0, 2, 0]) + bytes(6)
    np.testing.assert_array_equal(lmcodec.decode(zero), lmcodec.decode(plain))


def test_map_streams_bit_exact_across_kernel_paths_and_threads():
    img = _photo(160, 224)
    m = _map(img, 35, -25)
    streams, pixels = set(), []
    try:
        for path in lmcodec.kernel_paths():
            lmcodec.set_kernels(path)
            for t in (1, 2):
                d = lmcodec.encode(img, 45, quality_map=m, threads=t)
                streams.add(d)
                pixels.append(lmcodec.decode(d, threads=t))
    finally:
        lmcodec.set_kernels("auto")
    assert len(streams) == 1
    for p in pixels[1:]:
        np.testing.assert_array_equal(p, pixels[0])


def test_resampling_and_roi_offsets():
    assert _quality_map.grid(100, 130) == (2, 3)
    # a finer map is averaged over each block, a per-block map is used as it is
    fine = np.zeros((128, 192))
    fine[:64, :64] = 30
    np.testing.assert_array_equal(_quality_map.offsets_from_map(fine, 128, 192), [[30, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(_quality_map.offsets_from_map([[1, 2, 3], [4, 5, 6]], 100, 130),
                                  [[1, 2, 3], [4, 5, 6]])
    coarse = np.array([[10.0]])  # one value covers the whole image
    assert (_quality_map.offsets_from_map(coarse, 300, 300) == 10).all()
    mask = np.zeros((128, 128), np.uint8)
    mask[:64, :64] = 255
    off = _quality_map.offsets_from_roi(mask, 128, 128, strength=40)
    np.testing.assert_array_equal(off, [[30, -10], [-10, -10]])
    s = _quality_map.saliency(_photo(128, 192))
    assert s.shape == (2, 3) and s.min() == 0 and s.max() == 1


@pytest.mark.parametrize("kwargs", [dict(quality_map=np.full((2, 3), 120)), dict(quality_map=[[np.nan]]),
                                    dict(quality_map=np.zeros(5)), dict(quality_map=np.zeros((2, 3)), roi="auto"),
                                    dict(roi="everywhere"), dict(roi="auto", roi_strength=-1),
                                    dict(roi_strength=10), dict(quality_map=np.zeros((2, 3)), method="pca")])
def test_bad_maps_refused(kwargs):
    with pytest.raises(lmcodec.LmcError):
        lmcodec.encode(_photo(128, 192), 50, **kwargs)


def test_core_refuses_a_grid_of_the_wrong_size():
    model = lmcodec._api._model("hyperprior")
    with pytest.raises(lmcodec.LmcError, match="64x64"):
        model.encode(_photo(128, 192), 50.0, quality_map=np.zeros((3, 3), np.int8))


def _with_qmap(data, qmap_data, where="before"):
    ch = [(t, d) for t, d in _chunks(data) if t != b"QMAP"]
    i = [t for t, _ in ch].index(b"SIDE") + (2 if where == "after" else 0)
    return _build(ch[:i] + [(b"QMAP", qmap_data)] + ch[i:])


@pytest.mark.parametrize("qmap,err", [
    (bytes([6, 0, 3, 0, 2, 0]) + bytes([100]) + bytes(5), "corrupt"),   # offset outside -99..99
    (bytes([6, 0, 3, 0, 2, 0]) + bytes(5), "corrupt"),                  # too short
    (bytes([6, 0, 3, 0, 2, 0]) + bytes(7), "corrupt"),                  # too long
    (bytes([6, 0, 2, 0, 3, 0]) + bytes(6), "corrupt"),                  # wrong grid
    (bytes([6, 1, 3, 0, 2, 0]) + bytes(6), "corrupt"),                  # reserved byte
    (bytes([5, 0, 6, 0, 4, 0]) + bytes(24), "unsupported"),                   # another block size
    (bytes([6, 0]), "corrupt"),                                          # no header
    (b"", "corrupt"),
])
def test_damaged_qmap_is_an_error(qmap, err):
    data = lmcodec.encode(_photo(128, 192), 50)
    bad = _with_qmap(data, qmap)
    with pytest.raises(lmcodec.LmcError, match=f"(?i){err}"):
        lmcodec.decode(bad)
    with pytest.raises(lmcodec.LmcError):
        lmcodec.explain(bad)


def test_misplaced_or_repeated_qmap_is_an_error():
    img = _photo(128, 192)
    good = bytes([6, 0, 3, 0, 2, 0]) + bytes(6)
    data = lmcodec.encode(img, 50)
    with pytest.raises(lmcodec.LmcError, match="(?i)corrupt"):
        lmcodec.decode(_with_qmap(data, good, where="after"))
    twice = _with_qmap(lmcodec.encode(img, 50, quality_map=np.zeros((2, 3))), good)
    ch = _chunks(twice)
    i = [t for t, _ in ch].index(b"QMAP")
    with pytest.raises(lmcodec.LmcError, match="(?i)corrupt"):
        lmcodec.decode(_build(ch[:i] + [(b"QMAP", good)] + ch[i:]))
    pca = lmcodec.encode(img, 50, method="pca")
    ch = _chunks(pca)
    with pytest.raises(lmcodec.LmcError, match="(?i)corrupt"):
        lmcodec.decode(_build(ch[:1] + [(b"QMAP", good)] + ch[1:]))


def test_old_streams_decode_unchanged():
    """The golden streams (no QMAP) still decode to their golden pixels (tests/test_golden.py
    checks every one); here: a stream without a map has no QMAP and explains without one."""
    data = (ROOT / "tests" / "data" / "golden_hyperprior.lmc").read_bytes()
    assert b"QMAP" not in [t for t, _ in _chunks(data)]
    ex = lmcodec.explain(data)
    assert ex.quality_map is None
    np.testing.assert_array_equal(ex.decoded[..., :3] if ex.decoded.ndim == 3 else ex.decoded,
                                  np.asarray(lmcodec.decode(data))[..., :3])


def _equal_size(img, target, **kw):
    """The stream with these options whose size is nearest target (benchmarks/roi.py's search)."""
    return load_benchmark("roi").equal_size(img, target, **kw)


@pytest.mark.skipif(not (KODAK / "kodim23.png").exists(), reason="Kodak not available")
def test_roi_gains_a_decibel_at_equal_size_on_kodak():
    from PIL import Image

    img = np.asarray(Image.open(KODAK / "kodim23.png").convert("RGB"))
    mask = np.zeros(img.shape[:2], np.uint8)
    mask[128:320, 64:576] = 255  # the two parrots' heads (a given mask, not tuned)
    plain = lmcodec.encode(img, 50)
    roi = _equal_size(img, len(plain), roi=mask)
    assert abs(len(roi) - len(plain)) <= 0.01 * len(plain)
    a, b = lmcodec.decode(plain), lmcodec.decode(roi)
    inside = mask > 0
    gain_in = psnr(b[inside], img[inside]) - psnr(a[inside], img[inside])
    gain_out = psnr(b[~inside], img[~inside]) - psnr(a[~inside], img[~inside])
    assert gain_in >= 1.0, gain_in
    assert gain_out < 0  # paid for by the rest
    # explain shows the bits move into the ROI
    ea, eb = lmcodec.explain(plain), lmcodec.explain(roi)
    share = [float(e.bits_y[inside].sum() / e.bits_y.sum()) for e in (ea, eb)]
    assert share[1] > share[0] + 0.05, share


def test_cli_roi(tmp_path):
    from PIL import Image

    img = _photo(128, 192)
    src, mask = tmp_path / "in.png", tmp_path / "mask.png"
    Image.fromarray(img).save(src)
    m = np.zeros((32, 48), np.uint8)  # any resolution
    m[:16, :16] = 255
    Image.fromarray(m).save(mask)
    for roi, out in ((str(mask), "a.lmc"), ("auto", "b.lmc")):
        r = subprocess.run([sys.executable, "-m", "lmcodec", "encode", str(src), "--roi", roi, "-o",
                            str(tmp_path / out)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        data = (tmp_path / out).read_bytes()
        assert "QMAP" in lmcodec.info(data).sections
    ex = lmcodec.explain((tmp_path / "a.lmc").read_bytes())
    np.testing.assert_array_equal(ex.quality_map, _quality_map.offsets_from_roi(m, 128, 192))


def test_pillow_save_takes_roi_and_quality_map(tmp_path):
    from PIL import Image

    img = _photo(128, 192)
    mask = np.zeros((128, 192), np.uint8)
    mask[:64, :64] = 255
    Image.fromarray(img).save(tmp_path / "a.lmc", quality=50, roi=mask)
    assert (tmp_path / "a.lmc").read_bytes() == lmcodec.encode(img, 50, roi=mask)
    Image.fromarray(img).save(tmp_path / "b.lmc", quality=50, quality_map=[[10, 0, -10], [0, 0, 0]])
    with Image.open(tmp_path / "b.lmc") as im:
        assert im.size == (192, 128)
    assert "QMAP" in lmcodec.info((tmp_path / "b.lmc").read_bytes()).sections
