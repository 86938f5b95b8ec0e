"""lmcodec.explain / `lmcodec explain`: bit maps from the real coded symbols,
the channel report, the channel-group views and the written report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lmcodec
from lmcodec import _core

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"
# rANS flush: kRansLanes final 64-bit states of which ~31 bits each are the
# initial state, plus at most one partly used 32-bit word per lane
FLUSH_BITS = 4 * (64 + 32)


def _photo(h=160, w=224):
    from PIL import Image

    im = Image.open(ROOT / "python" / "lmcodec" / "data" / "photo.png").convert("RGB")
    return np.asarray(im)[:h, :w].copy()


@pytest.mark.parametrize("quality,shape", [(20, (160, 224)), (75, (128, 192)), (95, (100, 130))])
def test_bits_sum_to_the_payloads(quality, shape):
    img = _photo(*shape)
    ex = lmcodec.explain(img, quality)
    sizes = lmcodec.info(ex.stream).sections
    lat = ex.latent_chunk  # LATC: the shipped model has a context model
    assert ex.payload_bytes == {"SIDE": sizes["SIDE"], lat: sizes[lat]}
    by, bz = float(ex.symbol_bits_y.sum()), float(ex.symbol_bits_z.sum())
    for bits, chunk in ((by, lat), (bz, "SIDE")):
        slack = sizes[chunk] * 8 - bits
        assert 0 <= slack <= FLUSH_BITS, (chunk, slack)
    total = (sizes[lat] + sizes["SIDE"]) * 8
    assert abs(total - (by + bz)) <= 0.01 * total or abs(total - (by + bz)) <= 2 * FLUSH_BITS
    # the per-pixel maps are the symbols' bits spread over their cells, cropped to the image
    h, w = shape
    for sym, cell, m in ((ex.symbol_bits_y, 16, ex.bits_y), (ex.symbol_bits_z, 64, ex.bits_z)):
        cells = sym.sum(axis=0).astype(np.float64)
        rows = np.minimum(cell, h - cell * np.arange(cells.shape[0])).clip(0)
        cols = np.minimum(cell, w - cell * np.arange(cells.shape[1])).clip(0)
        inside = (cells * np.outer(rows, cols) / cell ** 2).sum()
        np.testing.assert_allclose(m.astype(np.float64).sum(), inside, rtol=1e-4)
    assert ex.bits_y.shape == (h, w) and ex.bits_z.shape == (h, w)
    assert (ex.bits_y >= 0).all() and (ex.bits_z >= 0).all()


@pytest.mark.skipif(not (KODAK / "kodim23.png").exists(), reason="Kodak not available")
def test_bits_sum_on_kodak_within_one_percent():
    from PIL import Image

    img = np.asarray(Image.open(KODAK / "kodim23.png").convert("RGB"))
    ex = lmcodec.explain(img, 50)
    payload = sum(ex.payload_bytes.values()) * 8
    assert abs(payload - ex.total_bits) / payload < 0.01
    # 768 x 512 has no padding: the maps hold every symbol's bits
    np.testing.assert_allclose(ex.bits_y.sum() + ex.bits_z.sum(), ex.total_bits, rtol=1e-5)


def test_escapes_are_counted():
    """Noise at quality 100 pushes latents outside the tables: escapes' raw bits count too."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ex = lmcodec.explain(img, 100)
    slack = ex.payload_bytes[ex.latent_chunk] * 8 - float(ex.symbol_bits_y.sum())
    assert 0 <= slack <= FLUSH_BITS


def test_symbol_bits_match_the_tables():
    """Each symbol's length is -log2(freq / 2^16) of its table: recompute from z's stream with rans_decode."""
    img = _photo(128, 128)
    ex = lmcodec.explain(img, 60)
    info = lmcodec.model_info()
    assert ex.symbol_bits_y.shape[0] == int(info["M"]) and ex.symbol_bits_z.shape[0] == int(info["N"])
    # a symbol never takes less than 0 bits nor (without an escape) more than 16
    assert ex.symbol_bits_y.min() >= 0 and ex.symbol_bits_z.min() >= 0


def test_channel_report_consistent():
    img = _photo()
    ex = lmcodec.explain(img, 50)
    m = int(lmcodec.model_info()["M"])
    assert ex.channel_rate.shape == (m,) and ex.channel_energy.shape == (m,) and ex.channel_order.shape == (m,)
    np.testing.assert_allclose(ex.channel_rate.sum(), ex.symbol_bits_y.sum(), rtol=1e-6)
    assert sorted(ex.channel_order.tolist()) == list(range(m))
    assert (np.diff(ex.channel_rate[ex.channel_order]) <= 0).all()
    assert (ex.channel_energy >= 0).all() and ex.channel_energy.max() > 0
    # the groups partition the channels and each view is a picture of the image's size
    kept = np.concatenate([c for c, _ in ex.groups])
    assert sorted(kept.tolist()) == list(range(m))
    for _, view in ex.groups:
        assert view.shape == (img.shape[0], img.shape[1], 3) and view.dtype == np.uint8
    # keeping every channel is the decoded image: the synthesis binding is the decoder's
    np.testing.assert_array_equal(ex.decoded, lmcodec.decode(ex.stream))
    np.testing.assert_array_equal(ex.error, np.abs(img.astype(np.int16) - ex.decoded).mean(axis=2).astype(np.float32))
    # the strongest group alone is closer to the image than the weakest alone
    def err(v):
        return float(np.mean((v.astype(np.float64) - img) ** 2))
    assert err(ex.groups[0][1]) < err(ex.groups[-1][1])


def test_explain_a_stream_and_its_errors(tmp_path):
    img = _photo(96, 96)
    data = lmcodec.encode(img, 40)
    ex = lmcodec.explain(data)
    assert ex.stream == data and ex.error is None and ex.quality == 40
    ex2 = lmcodec.explain(data, source=img)
    assert ex2.error is not None
    with pytest.raises(lmcodec.LmcError):
        lmcodec.explain(data, source=img[:64])
    with pytest.raises(lmcodec.LmcError):
        lmcodec.explain(data, rdo=False)  # encode options do not apply to a stream
    bad = bytearray(data)
    bad[-20] ^= 0x55
    with pytest.raises(lmcodec.LmcError):
        lmcodec.explain(bytes(bad))
    with pytest.raises(lmcodec.LmcError):
        lmcodec.explain(lmcodec.encode(img, 40, method="pca"))


def test_report_written(tmp_path):
    from lmcodec._explain_report import write_report

    img = _photo(128, 160)
    q = np.zeros((2, 3))
    q[0, 0] = 20
    ex = lmcodec.explain(img, 50, quality_map=q)
    assert ex.quality_map is not None and ex.quality_map[0, 0] == 20
    index = write_report(ex, tmp_path / "r", "photo")
    files = {p.name for p in (tmp_path / "r").iterdir()}
    for f in ("index.html", "README.md", "decoded.png", "bits_y.png", "bits_z.png", "error.png", "channels.png",
              "quality_map.png", "group_0.png"):
        assert f in files, f
    page = index.read_text()
    assert all(f"src='{f}'" in page for f in files if f.endswith(".png"))
    from PIL import Image

    with Image.open(tmp_path / "r" / "bits_y.png") as im:
        assert im.size[0] == 160 and im.size[1] > 128


def test_cli_explain(tmp_path):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(_photo(96, 128)).save(src)
    out = tmp_path / "rep"
    r = subprocess.run([sys.executable, "-m", "lmcodec", "explain", str(src), "-q", "30", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (out / "index.html").exists() and (out / "bits_y.png").exists()
    # a non-empty folder is refused without -f; an .lmc input works too
    lmc = tmp_path / "x.lmc"
    lmc.write_bytes(lmcodec.encode(_photo(96, 128), 30))
    r = subprocess.run([sys.executable, "-m", "lmcodec", "explain", str(lmc), "-o", str(out)], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "--force" in r.stderr
    r = subprocess.run([sys.executable, "-m", "lmcodec", "explain", str(lmc), "-o", str(out), "-f", "--source",
                        str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (out / "error.png").exists()
