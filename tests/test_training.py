"""Training-side tests (need torch): tiny training run, export -> load
round-trip, integer h_s determinism, and C++ codec vs the Python reference."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

import lmcodec  # noqa: E402
from training import export, lmw  # noqa: E402
from training.models import TINY_CONFIG, MeanScaleHyperprior, rd_loss  # noqa: E402
from training.reference_codec import ReferenceCodec  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("train_data")
    rng = np.random.default_rng(0)
    for i in range(30):
        yy, xx = np.mgrid[0:160, 0:192]
        img = np.stack([128 + 100 * np.sin(xx / (7 + i) + c) * np.cos(yy / 11) for c in range(3)], -1)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"img_{i:02d}.png")
    return d


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory, data_dir):
    from training import train

    cache = tmp_path_factory.mktemp("cache")
    rc = train.main(["--tiny", "--steps", "6", "--batch", "2", "--patch", "64", "--data", str(data_dir),
                     "--cache", str(cache), "--val-every", "3", "--val-count", "2", "--no-progress",
                     "--warmup", "2", "--seed", "1"])
    assert rc == 0
    st = torch.load(cache / "state.pt", weights_only=False)
    assert st["step"] == 6
    # resume continues from the cache
    rc = train.main(["--tiny", "--steps", "2", "--batch", "2", "--patch", "64", "--data", str(data_dir),
                     "--cache", str(cache), "--resume", "--val-every", "0", "--no-progress", "--seed", "2"])
    assert rc == 0
    st = torch.load(cache / "state.pt", weights_only=False)
    assert st["step"] == 8
    model = MeanScaleHyperprior(TINY_CONFIG)
    model.load_state_dict(st["ema"])
    calib = torch.rand(2, 3, 128, 128)
    meta, tensors = export.build_export(model, calib, train_steps=8, train_hours=0.0)
    path = tmp_path_factory.mktemp("export") / "tiny.lmw"
    model_id = lmw.write(path, meta, tensors)
    return path, model_id, model


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    m = MeanScaleHyperprior(TINY_CONFIG)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    x = torch.rand(2, 3, 64, 64)
    losses = []
    for _ in range(15):
        r = rd_loss(m(x, 1.0), x, m.lam(1.0))
        opt.zero_grad()
        r["loss"].backward()
        opt.step()
        losses.append(float(r["loss"].detach()))
    assert losses[-1] < losses[0]


def test_export_file_roundtrip(tiny_export):
    path, model_id, model = tiny_export
    wf = lmw.read(path)
    assert wf.model_id == model_id and wf.meta["model"] == "hyperprior"
    assert wf.meta["train.steps"] == 8
    loaded = export.load_hyperprior_weights(None, path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a = model.g_a(x)
        b = loaded.g_a(x)
    # int8 weights: close, not equal
    assert torch.allclose(a, b, atol=0.05 * float(a.abs().max()) + 1e-3)
    # a damaged file is refused, by Python and by C++
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    with pytest.raises(lmw.FormatError):
        lmw.read(bytes(raw))
    bad = path.with_name("bad.lmw")
    bad.write_bytes(bytes(raw))
    with pytest.raises(lmcodec.LmcError):
        lmcodec._core.Model(str(bad))


def test_integer_hs_is_thread_independent(tiny_export):
    path, _, _ = tiny_export
    ref = ReferenceCodec(path)
    z = torch.randint(-20, 21, (1, TINY_CONFIG.N, 3, 5))
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = ref.hs(z)
        torch.set_num_threads(2)
        b = ref.hs(z)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a, b)


def test_cpp_codec_matches_reference(tiny_export):
    path, _, _ = tiny_export
    ref = ReferenceCodec(path)
    cpp = lmcodec._core.Model(str(path))
    rng = np.random.default_rng(3)
    for (h, w) in ((64, 64), (70, 93)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for q in (10, 75):
            ours = cpp.encode(img, q)
            theirs = ref.encode(img, q)
            assert ours == theirs
            a = cpp.decode(ours)
            b = ref.decode(ours)
            assert a.shape == (h, w, 3)
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
