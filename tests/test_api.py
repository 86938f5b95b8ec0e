"""The Python API: encode / decode / info / check, modes, errors."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import lmcodec
from conftest import natural, psnr
from lmcodec import LmcError


@pytest.mark.parametrize("method", ["hyperprior", "pca"])
def test_roundtrip_rgb(method):
    img = natural(70, 90)
    data = lmcodec.encode(img, 90, method=method)
    assert isinstance(data, bytes) and lmcodec.check(data)
    out = lmcodec.decode(data)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert psnr(img, out) > 22
    i = lmcodec.info(data)
    assert (i.width, i.height, i.mode, i.codec) == (90, 70, "RGB", method)
    assert abs(i.quality - 90) < 1e-6
    assert i.sections.get("LATN", 0) + i.sections.get("LATC", 0) > 0


def test_quality_is_monotone_in_rate():
    img = natural(128, 128, 1)
    sizes = [len(lmcodec.encode(img, q)) for q in (1, 20, 40, 60, 80, 100)]
    assert sizes == sorted(sizes), sizes
    errs = [psnr(img, lmcodec.decode(lmcodec.encode(img, q))) for q in (5, 50, 95)]
    assert errs[0] < errs[-1]


def test_gray_is_gray_and_not_bigger_than_rgb():
    g = natural(96, 80, 2, channels=1)
    data = lmcodec.encode(g, 75)
    out = lmcodec.decode(data)
    assert out.shape == g.shape
    assert lmcodec.info(data).mode == "L"
    rgb = np.repeat(g[..., None], 3, axis=2)
    assert len(data) <= 1.05 * len(lmcodec.encode(rgb, 75)) + 16
    assert psnr(g, out) > 22


def test_rgba_alpha_is_lossless():
    img = natural(50, 61, 3)
    alpha = (np.arange(50 * 61).reshape(50, 61) * 7 % 256).astype(np.uint8)
    rgba = np.dstack([img, alpha])
    out = lmcodec.decode(lmcodec.encode(rgba, 60))
    assert out.shape == (50, 61, 4)
    assert np.array_equal(out[..., 3], alpha)
    opaque = np.dstack([img, np.full((50, 61), 255, np.uint8)])
    d = lmcodec.encode(opaque, 60)
    assert np.all(lmcodec.decode(d)[..., 3] == 255)
    assert lmcodec.info(d).sections["ALPH"] == 2  # constant plane: two bytes


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 37, 3), (37, 1, 3), (63, 65, 3), (65, 64, 3)])
def test_odd_sizes(shape):
    img = natural(shape[0], shape[1], 4)
    out = lmcodec.decode(lmcodec.encode(img, 50))
    assert out.shape == img.shape


def test_deterministic_and_thread_independent():
    img = natural(100, 140, 5)
    a = lmcodec.encode(img, 70, threads=1)
    b = lmcodec.encode(img, 70, threads=2)
    assert a == b
    assert np.array_equal(lmcodec.decode(a, threads=1), lmcodec.decode(a, threads=2))


def test_concurrent_threads_match_serial():
    imgs = [natural(64 + 8 * i, 72, 10 + i) for i in range(8)]
    serial = [lmcodec.encode(im, 50) for im in imgs]
    results = [None] * 8

    def work(i):
        d = lmcodec.encode(imgs[i], 50)
        results[i] = (d, lmcodec.decode(d))

    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(8):
        assert results[i][0] == serial[i]
        assert np.array_equal(results[i][1], lmcodec.decode(serial[i]))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_fork_after_threaded_calls():
    """The worker threads of a call are kept for the next one (a process-wide
    cache of pools); a child made by fork() has none of them and must still
    encode and decode with threads, identically, without hanging."""
    import os

    img = natural(90, 120, 3)
    data = lmcodec.encode(img, 60, threads=2)
    expect = lmcodec.decode(data, threads=2)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report through the exit status only
        ok = 0
        try:
            ok = int(lmcodec.encode(img, 60, threads=2) == data and np.array_equal(lmcodec.decode(data, threads=2), expect))
        finally:
            os._exit(0 if ok else 1)
    os.close(w)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert np.array_equal(lmcodec.decode(data, threads=2), expect)  # the parent's pools still work


@pytest.mark.parametrize("shape", [(1, 1), (16, 16), (32, 48), (17, 70)])
def test_tiny_images_every_path_and_thread_count(shape):
    """On a thumbnail each layer is one partial tile, of which the kernels
    compute only the part that exists: the result must not depend on the
    kernel path or thread count, and decoding stays close to the input."""
    img = natural(*shape, seed=sum(shape))
    data = lmcodec.encode(img, 80, threads=1)
    ref = lmcodec.decode(data, threads=1)
    assert ref.shape == img.shape
    assert lmcodec.encode(img, 80, threads=2) == data
    assert np.array_equal(lmcodec.decode(data, threads=2), ref)
    try:
        for path in lmcodec.kernel_paths():
            assert lmcodec.set_kernels(path) == path
            assert lmcodec.encode(img, 80, threads=1) == data
            assert np.array_equal(lmcodec.decode(data, threads=2), ref)
    finally:
        lmcodec.set_kernels("auto")
    if min(shape) >= 16:
        assert psnr(ref, img) > 24


def test_streams_of_replaced_weights_still_decode(tmp_path, monkeypatch):
    """New weights get a new model id; the previous release's weights stay
    installed as models/<method>-<id prefix>.lmw, so its streams keep
    decoding (bit for bit as before) while encode uses the new model."""
    import shutil
    import sys
    from pathlib import Path

    from lmcodec import _api

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from training import lmw

    img = natural(48, 64, 11)
    old_stream = lmcodec.encode(img, 60)
    old_pixels = lmcodec.decode(old_stream)
    old_id = lmcodec.model_info()["model_id"]
    # "new" weights: the same networks with another RDO factor (another file, another id)
    wf = lmw.read(_api.MODELS_DIR / "hyperprior.lmw")
    meta = dict(wf.meta)
    meta["rdo.scale_power"] = float(meta["rdo.scale_power"]) + 0.25
    lmw.write(tmp_path / "hyperprior.lmw", meta, dict(wf.tensors))
    shutil.copy(_api.MODELS_DIR / "pca.lmw", tmp_path / "pca.lmw")
    monkeypatch.setattr(_api, "MODELS_DIR", tmp_path)
    _api._reset_models()
    try:
        new_id = lmcodec.model_info()["model_id"]
        assert new_id != old_id and lmcodec.model_info()["archived"] == []
        with pytest.raises(LmcError, match=old_id):  # no archive: refused, naming the stream's model
            lmcodec.decode(old_stream)
        shipped = Path(_api.__file__).resolve().parent / "models" / "hyperprior.lmw"
        shutil.copy(shipped, _api.archive_path("hyperprior", old_id))
        assert lmcodec.model_info()["archived"] == [old_id[: _api.ARCHIVE_ID_DIGITS]]
        assert np.array_equal(lmcodec.decode(old_stream, threads=2), old_pixels)
        new_stream = lmcodec.encode(img, 60)
        assert lmcodec.info(new_stream).model_id == new_id
        assert lmcodec.info(old_stream).model_id == old_id
        assert psnr(lmcodec.decode(new_stream), img) > 25
        # an archive file whose name promises another id than it holds is refused
        bogus = "f" * 32
        shutil.copy(tmp_path / "hyperprior.lmw", _api.archive_path("hyperprior", bogus))
        with pytest.raises(LmcError, match="holds model"):
            _api._model_for_stream(lmcodec._api.CODECS["hyperprior"], bogus)
    finally:
        monkeypatch.undo()
        _api._reset_models()
    assert lmcodec.model_info()["model_id"] == old_id


def test_pil_input_and_modes():
    from PIL import Image

    img = natural(40, 48, 6)
    im = Image.fromarray(img)
    assert lmcodec.decode(lmcodec.encode(im, 80)).shape == (40, 48, 3)
    assert lmcodec.decode(lmcodec.encode(im.convert("L"), 80)).shape == (40, 48)
    assert lmcodec.decode(lmcodec.encode(im.convert("P"), 80)).shape == (40, 48, 3)
    assert lmcodec.decode(lmcodec.encode(im.convert("CMYK"), 80)).shape == (40, 48, 3)
    assert lmcodec.decode(lmcodec.encode(im.convert("LA"), 80)).shape == (40, 48, 4)
    assert lmcodec.decode(lmcodec.encode(im.convert("1"), 80)).shape == (40, 48)


@pytest.mark.parametrize("bad", [
    np.zeros((10, 10, 3), np.int32),        # ambiguous range: refused (uint16 and float are scaled: test_cli_safety)
    np.full((10, 10, 3), 300.0, np.float32),  # float outside [0, 255]: refused, never clipped
    np.zeros((10, 10, 2), np.uint8),
    np.zeros((10,), np.uint8),
    np.zeros((0, 10, 3), np.uint8),
    "not an image",
])
def test_bad_images(bad):
    with pytest.raises(LmcError):
        lmcodec.encode(bad, 50)


@pytest.mark.parametrize("q", [0, 0.5, 101, float("nan"), "50", None, True])
def test_bad_quality(q):
    with pytest.raises(LmcError):
        lmcodec.encode(natural(8, 8), q)


def test_rdo_quantisation():
    """The default encoder quantises rate-distortion optimally: fewer bytes,
    and at equal rate a better PSNR than plain rounding (interpolated on the
    plain curve); rdo=False gives the plain stream; both decode."""
    img = natural(128, 160, 5)
    for q in (30, 70):
        rdo, plain = lmcodec.encode(img, q), lmcodec.encode(img, q, rdo=False)
        assert len(rdo) < len(plain)
        p_rdo = psnr(img, lmcodec.decode(rdo))
        assert p_rdo < psnr(img, lmcodec.decode(plain)) + 0.05
        curve = [(len(lmcodec.encode(img, qq, rdo=False)), psnr(img, lmcodec.decode(lmcodec.encode(img, qq, rdo=False))))
                 for qq in range(q - 24, q + 1, 2)]
        sizes, ps = zip(*curve)
        assert sizes[0] < len(rdo) < sizes[-1]
        assert p_rdo > np.interp(np.log(len(rdo)), np.log(sizes), ps)
    with pytest.raises(LmcError):
        lmcodec.encode(img, 50, rdo="yes")
    # the PCA codec has no RDO quantiser: the switch changes nothing there
    assert lmcodec.encode(img, 50, method="pca", rdo=False) == lmcodec.encode(img, 50, method="pca")


def test_bad_arguments():
    img = natural(8, 8)
    with pytest.raises(LmcError):
        lmcodec.encode(img, 50, threads=-1)
    with pytest.raises(LmcError):
        lmcodec.encode(img, 50, method="nope")
    with pytest.raises(LmcError):
        lmcodec.decode("text")
    with pytest.raises(LmcError):
        lmcodec.decode(b"")
    with pytest.raises(LmcError):
        lmcodec.decode(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    assert not lmcodec.check(b"")
    assert not lmcodec.check(12)
    assert issubclass(LmcError, ValueError)


def test_limits_refuse_big_images():
    data = lmcodec.encode(natural(64, 64), 50)
    old = lmcodec.get_limits()
    try:
        lmcodec.set_limits(max_pixels=1000)
        with pytest.raises(LmcError, match="limit|pixels"):
            lmcodec.decode(data)
        with pytest.raises(LmcError):
            lmcodec.info(data)
    finally:
        lmcodec.set_limits(**old)
    assert lmcodec.decode(data).shape == (64, 64, 3)
    with pytest.raises(LmcError):
        lmcodec.set_limits(max_pixels=0)


def test_metadata_roundtrip():
    img = natural(16, 16)
    data = lmcodec.encode(img, 50, icc_profile=b"ICCDATA", exif=b"Exif\0\0MM", xmp=b"<x:xmpmeta/>")
    md = lmcodec.info(data).metadata
    assert md == {"icc_profile": b"ICCDATA", "exif": b"Exif\0\0MM", "xmp": b"<x:xmpmeta/>"}
    assert lmcodec.decode(data).shape == (16, 16, 3)


def test_model_mismatch_is_refused():
    img = natural(32, 32)
    data = bytearray(lmcodec.encode(img, 50))
    h, chunks = lmcodec._core.internal.container_read(bytes(data))
    h = dict(h)
    h["model_id"] = bytes(16)
    forged = lmcodec._core.internal.container_write(h, [(t if isinstance(t, bytes) else t.encode(), c) for t, c in chunks])
    with pytest.raises(LmcError, match="model"):
        lmcodec.decode(forged)


def test_scalar_path_matches_simd():
    img = natural(96, 96, 7)
    try:
        lmcodec.set_force_scalar(True)
        assert lmcodec.kernel_path() == "scalar"
        a = lmcodec.encode(img, 60)
        da = lmcodec.decode(a)
    finally:
        path = lmcodec.set_force_scalar(False)
    b = lmcodec.encode(img, 60)
    db = lmcodec.decode(b)
    # the portable kernels perform the SIMD path's exact float operations
    # (std::fma where AVX2 uses FMA, same order, same algorithm), so the
    # streams and the decoded pixels are identical, not merely close.
    assert a == b
    assert np.array_equal(da, db)
    assert path == lmcodec.kernel_paths()[-1]


def test_every_kernel_path_gives_the_same_bits():
    """set_kernels caps the path; each path this CPU runs (scalar, avx2,
    avx512) writes the same stream and decodes the same pixels."""
    paths = lmcodec.kernel_paths()
    assert paths[0] == "scalar" and set(paths) <= {"scalar", "avx2", "avx512"}
    assert lmcodec.kernel_path() == paths[-1]  # auto = the fastest
    img = natural(80, 72, 11)
    try:
        streams, pixels = [], []
        for p in paths:
            assert lmcodec.set_kernels(p) == p == lmcodec.kernel_path()
            streams.append(lmcodec.encode(img, 45, threads=2))
            pixels.append(lmcodec.decode(streams[-1], threads=2))
        assert all(s == streams[0] for s in streams)
        assert all(np.array_equal(x, pixels[0]) for x in pixels)
        # a cap above what the CPU runs gives the best below it
        assert lmcodec.set_kernels("avx512") == paths[-1]
        assert lmcodec.set_kernels("avx2") == ("avx2" if "avx2" in paths else "scalar")
        with pytest.raises(LmcError, match="unknown kernel path"):
            lmcodec.set_kernels("neon")
        with pytest.raises(LmcError):
            lmcodec.set_kernels(None)
        assert lmcodec.kernel_path() == ("avx2" if "avx2" in paths else "scalar")  # unchanged by the errors
    finally:
        assert lmcodec.set_kernels("auto") == paths[-1]


def test_kernels_environment_variable():
    """LMCODEC_KERNELS caps the path at start-up; LMCODEC_FORCE_SCALAR wins."""
    import subprocess
    import sys
    code = "import lmcodec; print(lmcodec.kernel_path())"
    env = dict(os.environ)
    env.pop("LMCODEC_FORCE_SCALAR", None)
    best = lmcodec.kernel_paths()[-1]
    for value, want in (("scalar", "scalar"), ("avx512", best), ("auto", best), ("bogus", best)):
        env["LMCODEC_KERNELS"] = value
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == want, (value, out.stderr)
        assert ("LMCODEC_KERNELS='bogus' is not one of" in out.stderr) == (value == "bogus")
    env["LMCODEC_KERNELS"] = "avx512"
    env["LMCODEC_FORCE_SCALAR"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "scalar"


def test_strips_equal_whole_image():
    """Strip-wise transforms (bounded memory) give exactly the whole-image result."""
    # 13 latent rows: encoder strips of 1, 2 and 3 latent rows cross every
    # boundary case; decoder strips are multiples of 4 latent rows (64 px),
    # and the smallest (4 rows, halo 2 above and 4 below) leaves a strip with
    # a single latent row at the bottom
    img = natural(200, 72, 8)
    model = lmcodec._api._model("hyperprior")
    whole = model.encode(img, 55, 2, 100000)
    ref = model.decode(whole, 2, 0, 0, 100000)
    for rows in (16, 32, 48):
        assert model.encode(img, 55, 2, rows) == whole
    for rows in (16, 64, 100, 128, 192):  # 16 and 100 round to 64
        assert np.array_equal(model.decode(whole, 2, 0, 0, rows), ref)
    # taller, so that strips of 4 and 8 latent rows start at every offset of
    # the Winograd blocks of every layer
    img = natural(37 * 16, 48, 11)
    whole = model.encode(img, 70, 2, 100000)
    ref = model.decode(whole, 2, 0, 0, 100000)
    for rows in (64, 128, 192):
        assert np.array_equal(model.decode(whole, 1, 0, 0, rows), ref)


def test_wide_images_use_shorter_strips_with_identical_results():
    """Images wider than 4096 px get shorter default strips (memory bound);
    the result equals the whole-image computation."""
    img = natural(40 * 16, 4200, 9)  # padded width 4224 -> 31 latent rows per strip; 40 latent rows
    model = lmcodec._api._model("hyperprior")
    whole = model.encode(img, 40, 2, 100000)
    assert model.encode(img, 40, 2, 0) == whole
    assert np.array_equal(model.decode(whole, 2, 0, 0, 0), model.decode(whole, 2, 0, 0, 100000))


def test_stage_profile_names_every_layer_and_adds_up():
    """The benchmark-only stage profiler (lmcodec._core.internal.profile_*) sees every
    synthesis layer of a decode, with direct-conv multiply-adds that match
    the declared architecture, and records nothing when disabled."""
    import time

    from lmcodec import _core

    img = np.random.default_rng(3).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    data = lmcodec.encode(img, 50)
    _core.internal.profile_take()
    lmcodec.decode(data)
    assert _core.internal.profile_take() == []
    _core.internal.profile_enable(True)
    try:
        t0 = time.perf_counter()
        lmcodec.decode(data, threads=1)
        wall = time.perf_counter() - t0
    finally:
        _core.internal.profile_enable(False)
    entries = {e["name"]: e for e in _core.internal.profile_take()}
    gs = [n for n in entries if n.startswith("decode g_s.")]
    assert len([n for n in gs if "shortcut" not in n]) == 4
    assert any(n.startswith("decode h_s.") for n in entries) and "decode rans y" in entries
    assert sum(e["seconds"] for e in entries.values()) <= wall
    first = next(n for n in gs if n.startswith("decode g_s.0 "))
    # deconv M -> N on the 4x8 latent grid of the (64 x 128)-padded image: cin*cout*25 per input pixel
    cin, cout = (int(v) for v in first.split()[3].split("->"))
    conv = cin * cout * 25 * 4 * 8
    assert entries[first]["macs"] in (conv, conv + cout * cout * 8 * 16)  # + the fused IGDN


def test_max_bytes_fits_the_budget_at_the_highest_quality():
    img = natural(96, 128, 5)
    full = lmcodec.encode(img, 90)
    budget = len(full) // 3
    data = lmcodec.encode(img, 90, max_bytes=budget, exif=b"Exif\0\0MM" + bytes(40))
    assert len(data) <= budget
    q = lmcodec.info(data).quality
    assert 1 <= q < 90
    assert lmcodec.info(data).metadata["exif"].startswith(b"Exif")  # the budget counts the metadata too
    # a little more quality no longer fits (bisection to ~0.1 quality units)
    over = lmcodec.encode(img, min(90.0, q + 0.5), exif=b"Exif\0\0MM" + bytes(40))
    assert len(over) > budget or q + 0.5 >= 90
    # a budget the requested quality meets: that quality, unchanged stream
    assert lmcodec.encode(img, 40, max_bytes=10**9) == lmcodec.encode(img, 40)
    with pytest.raises(LmcError, match="cannot fit"):
        lmcodec.encode(img, 50, max_bytes=20)
    for bad in (0, -5, 1.5, True, "100"):
        with pytest.raises(LmcError, match="max_bytes"):
            lmcodec.encode(img, 50, max_bytes=bad)
