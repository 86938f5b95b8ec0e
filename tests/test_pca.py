"""The PCA (KLT) baseline codec: C++ (lmcodec._core.internal.pca_*) against the Python
reference (training/pca_reference.py), with the committed model file.

Needs no training data: the images are synthetic.
"""

from __future__ import annotations

import numpy as np
import pytest

import lmcodec
from conftest import ROOT, psnr
from lmcodec import _core

from training import lmw
from training.pca_reference import DIM, PcaError, PcaReference

WEIGHTS = ROOT / "python" / "lmcodec" / "models" / "pca.lmw"
W = str(WEIGHTS)


@pytest.fixture(scope="module")
def ref() -> PcaReference:
    return PcaReference(WEIGHTS)


def natural(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth, textured, edgy synthetic image (stands in for a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.empty((h, w, 3))
    for c in range(3):
        f = rng.uniform(0.01, 0.08, 4)
        img[..., c] = (120 + 60 * np.sin(f[0] * x + f[1] * y + c) + 30 * np.cos(f[2] * x * y / (w + 1) + f[3] * y)
                       + 40 * ((x + 2 * y) % 37 < 15) + rng.normal(0, 3 + 2 * c, (h, w)))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


IMAGES = [
    ("natural-48x64", natural(48, 64, 1)),
    ("natural-37x53", natural(37, 53, 2)),
    ("noise-24x40", noise(24, 40, 3)),
    ("flat-16x16", np.full((16, 16, 3), 200, np.uint8)),
    ("extremes-16x24", (noise(16, 24, 4) > 127).astype(np.uint8) * 255),
    ("1x1", noise(1, 1, 5)),
    ("7x9", natural(7, 9, 6)),
    ("63x65", natural(63, 65, 7)),
]
QUALITIES = [100, 137, 1000, 2550, 5000, 7525, 9000, 9999, 10000]


def test_model_file():
    wf = lmw.read(WEIGHTS)
    assert wf.meta["model"] == "pca"
    assert wf.tensors["pca.basis"].shape == (DIM, DIM)
    assert WEIGHTS.stat().st_size < 200_000
    # the basis is orthonormal up to its 2^-14 quantization
    b = wf.tensors["pca.basis"].astype(np.float64) / 2 ** 14
    assert np.abs(b.T @ b - np.eye(DIM)).max() < 2e-3


@pytest.mark.parametrize("name,img", IMAGES, ids=[n for n, _ in IMAGES])
def test_cpp_matches_reference(ref, name, img):
    h, w, _ = img.shape
    for q in QUALITIES:
        payload = _core.internal.pca_encode(W, img, q)
        assert payload == ref.encode_payload(img, q), (name, q)
        out = np.asarray(_core.internal.pca_decode(W, payload, w, h, q))
        assert out.shape == img.shape and out.dtype == np.uint8
        assert np.array_equal(out, ref.decode_payload(payload, w, h, q)), (name, q)


def test_every_quality_step(ref):
    """The integer quality -> step / table mappings agree over the whole range."""
    img = natural(16, 24, 11)
    for q in list(range(100, 10001, 173)) + [10000]:
        payload = _core.internal.pca_encode(W, img, q)
        assert payload == ref.encode_payload(img, q), q


def test_non_contiguous_input():
    img = natural(40, 80, 12)
    view = img[:, ::2]
    assert not view.flags.c_contiguous
    assert _core.internal.pca_encode(W, view, 5000) == _core.internal.pca_encode(W, np.ascontiguousarray(view), 5000)


def test_rate_and_quality_monotone():
    img = natural(64, 96, 13)
    sizes, psnrs = [], []
    for qual in [1, 10, 25, 50, 75, 90, 100]:
        payload = _core.internal.pca_encode(W, img, qual * 100)
        out = np.asarray(_core.internal.pca_decode(W, payload, 96, 64, qual * 100))
        sizes.append(len(payload))
        psnrs.append(psnr(img, out))
    assert all(a < b for a, b in zip(sizes, sizes[1:])), sizes
    assert all(a < b for a, b in zip(psnrs, psnrs[1:])), psnrs
    assert psnrs[-1] > 45


def test_deterministic():
    img = natural(33, 47, 14)
    assert _core.internal.pca_encode(W, img, 4321) == _core.internal.pca_encode(W, img.copy(), 4321)


def test_corrupt_payloads_raise(ref):
    img = natural(32, 40, 15)
    q = 6000
    p = _core.internal.pca_encode(W, img, q)
    for bad in [p[:-1], p + b"\0", b"", p[:8], p[: len(p) // 2]]:
        with pytest.raises(lmcodec.LmcError):
            _core.internal.pca_decode(W, bad, 40, 32, q)
    # wrong geometry: a different symbol count cannot end the stream cleanly
    with pytest.raises(lmcodec.LmcError):
        _core.internal.pca_decode(W, p, 48, 32, q)
    # bit flips: CorruptStream for most, never a crash; the reference agrees
    thrown = 0
    for i in range(0, len(p), max(1, len(p) // 97)):
        bad = bytearray(p)
        bad[i] ^= 1 << (i % 8)
        try:
            out = np.asarray(_core.internal.pca_decode(W, bytes(bad), 40, 32, q))
        except lmcodec.LmcError as e:
            assert str(e).startswith("corrupt stream")
            thrown += 1
            with pytest.raises((ValueError, PcaError)):
                ref.decode_payload(bytes(bad), 40, 32, q)
        else:
            assert np.array_equal(out, ref.decode_payload(bytes(bad), 40, 32, q))
    assert thrown > 0


def test_out_of_range_coefficient_is_corrupt(ref):
    """A valid rANS stream carrying a huge (escaped) coefficient is refused."""
    q = 100
    _, _, idx = ref.params(q)
    sym = np.zeros((2, DIM), np.int32)
    sym[1, 50] = 1 << 24
    args = (np.tile(idx, 2).astype(np.int32), ref.cdfs, ref.cdf_lengths, ref.offsets)
    payload = _core.internal.rans_encode(sym.reshape(-1), *args)
    with pytest.raises(lmcodec.LmcError, match="^corrupt stream"):
        _core.internal.pca_decode(W, payload, 16, 8, q)
    with pytest.raises(PcaError):
        ref.decode_payload(payload, 16, 8, q)
    sym[1, 50] = 2
    payload = _core.internal.rans_encode(sym.reshape(-1), *args)
    assert np.array_equal(np.asarray(_core.internal.pca_decode(W, payload, 16, 8, q)), ref.decode_payload(payload, 16, 8, q))


@pytest.mark.parametrize("q", [0, 99, 10001, -5, 1 << 40])
def test_bad_quality(q):
    img = natural(8, 8)
    with pytest.raises(lmcodec.LmcError):
        _core.internal.pca_encode(W, img, q)
    with pytest.raises(lmcodec.LmcError):
        _core.internal.pca_decode(W, b"", 8, 8, q)


def test_bad_arguments():
    with pytest.raises(lmcodec.LmcError):
        _core.internal.pca_encode(W, np.zeros((8, 8, 3), np.float32), 5000)
    with pytest.raises(lmcodec.LmcError):
        _core.internal.pca_encode(W, np.zeros((8, 8, 4), np.uint8), 5000)
    with pytest.raises(lmcodec.LmcError):
        _core.internal.pca_encode(W, np.zeros((8, 8), np.uint8), 5000)
    with pytest.raises(lmcodec.LmcError):
        _core.internal.pca_encode(W, np.zeros((0, 8, 3), np.uint8), 5000)
    with pytest.raises(lmcodec.LmcError):
        _core.internal.pca_decode(W, b"", 0, 8, 5000)
    with pytest.raises(lmcodec.LmcError):
        _core.internal.pca_encode("/nonexistent/pca.lmw", np.zeros((8, 8, 3), np.uint8), 5000)


def _rewrite(tmp_path, name, meta_edit=None, tensor_edit=None) -> str:
    wf = lmw.read(WEIGHTS)
    meta = dict(wf.meta)
    tensors = {k: np.array(v) for k, v in wf.tensors.items()}
    if meta_edit:
        meta_edit(meta)
    if tensor_edit:
        tensor_edit(tensors)
    path = tmp_path / f"{name}.lmw"
    lmw.write(path, meta, tensors)
    return str(path)


def _set(d, k, v):
    d[k] = v


BROKEN = {
    "model": dict(meta_edit=lambda m: _set(m, "model", "hyperprior")),
    "no-round": dict(meta_edit=lambda m: m.pop("quant.round_q8")),
    "round-range": dict(meta_edit=lambda m: _set(m, "quant.round_q8", 200)),
    "logstep-order": dict(meta_edit=lambda m: _set(m, "quant.logstep_min", m["quant.logstep_max"] + 1)),
    "exp2-short": dict(meta_edit=lambda m: _set(m, "quant.exp2_q16", m["quant.exp2_q16"][:63])),
    "table-step": dict(meta_edit=lambda m: _set(m, "tables.step", 0)),
    "no-basis": dict(tensor_edit=lambda t: t.pop("pca.basis")),
    "basis-dtype": dict(tensor_edit=lambda t: _set(t, "pca.basis", t["pca.basis"].astype(np.float32))),
    "basis-shape": dict(tensor_edit=lambda t: _set(t, "pca.basis", t["pca.basis"][:100])),
    "mean-range": dict(tensor_edit=lambda t: _set(t, "pca.mean", np.full(DIM, 300, np.int16))),
    "predict-value": dict(tensor_edit=lambda t: _set(t, "pca.predict", np.full(DIM, 3, np.int32))),
    "freqs-short": dict(tensor_edit=lambda t: _set(t, "tables.freqs", t["tables.freqs"][:-1])),
    "freq-zero": dict(tensor_edit=lambda t: t["tables.freqs"].__setitem__(0, 0)),
    "lengths-count": dict(tensor_edit=lambda t: _set(t, "tables.lengths", t["tables.lengths"][:-1])),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_weights_refused(tmp_path, name):
    path = _rewrite(tmp_path, name, **BROKEN[name])
    with pytest.raises(lmcodec.LmcError, match="^invalid argument"):
        _core.internal.pca_encode(path, natural(8, 8), 5000)


def test_quality_span_on_natural_image():
    """Quality 1..100 spans low to high rates on a photo-like image."""
    img = natural(128, 128, 21)
    bpp = {q: len(_core.internal.pca_encode(W, img, q * 100)) * 8 / img[..., 0].size for q in (1, 50, 100)}
    assert bpp[1] < 0.3 and bpp[100] > 2.0, bpp
