"""Entropy-model training on cached latents (training/cache_latents.py,
training/context_models.py, training/train_entropy.py): tiny synthetic
models and images only, a few seconds in all."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
PIL = pytest.importorskip("PIL.Image")

from training.cache_latents import LatentBank, build, prepare  # noqa: E402
from training.context_models import (  # noqa: E402
    VARIANTS,
    EntropyModel,
    VariantSpec,
    anchor_mask,
    build_variant,
    widen_hs,
)
from training.models import TINY_CONFIG, HyperpriorConfig, MeanScaleHyperprior  # noqa: E402
from training.train_entropy import evaluate  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is fastest, and far faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_base(seed: int = 0) -> MeanScaleHyperprior:
    torch.manual_seed(seed)
    m = MeanScaleHyperprior(TINY_CONFIG).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def write_images(root, n=3):
    rng = np.random.default_rng(1)
    (root / "set").mkdir(parents=True)
    for i in range(n):
        arr = (rng.random((144 + 16 * i, 208, 3)) * 255).astype(np.uint8)
        ext = ".jpg" if i == 1 else ".png"
        PIL.fromarray(arr).save(root / "set" / f"im{i}{ext}")


def test_cache_round_trip_and_resume(tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    write_images(data)
    model = tiny_base()
    out = build(model, b"\x01" * 16, data, cache, shard_images=1, log=lambda s: None)
    # split as training/data.py: file 0 held out, files 1 and 2 trained on
    val = LatentBank(out, "val", ["orig"])
    fixed = LatentBank(out, "val", ["fixed256"])
    train = LatentBank(out, "train")
    assert val.names == ["set/im0.png"] and len(fixed) == 1
    assert sorted(set(train.names)) == ["set/im1.jpg", "set/im2.png"]
    assert sorted(set(train.variant_of)) == ["flip", "orig", "s075", "s075flip"]
    assert train.variant_of.count("s075") == 1  # JPEG sources only
    M = TINY_CONFIG.M
    # val: fp32, cropped to a multiple of 64 (the codec's own padding-free size)
    assert val.images[0].dtype == torch.float32 and val.images[0].shape == (M, 128 // 16, 192 // 16)
    assert val.pixels[0] == (128, 192)
    assert fixed.images[0].shape == (M, 8, 8)
    # train: fp16, and equal to the encoder's y (before any gain) on the prepared image
    def find(name, variant):
        return [k for k, n in enumerate(train.names) if n == name and train.variant_of[k] == variant][0]

    i = find("set/im2.png", "orig")
    assert train.images[i].dtype == torch.float16
    px = torch.from_numpy(np.asarray(PIL.open(data / "set" / "im2.png").convert("RGB")).copy()).permute(2, 0, 1)
    with torch.no_grad():
        y = model.analysis(prepare(px, False, train.variant_of[i], 16))[0]
    assert train.images[i].shape == y.shape
    assert torch.allclose(train.images[i].float(), y, rtol=2e-3, atol=2e-3)
    # flip really is the mirrored image's latents, not mirrored latents
    j = find("set/im2.png", "flip")
    assert not torch.allclose(train.images[j].float(), train.images[i].float())
    # resumable: a second build rewrites nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("shard_*")}
    build(model, b"\x01" * 16, data, cache, shard_images=1, log=lambda s: None)
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("shard_*")}
    idx = json.loads(next((out / "train" / "orig").glob("shard_*.json")).read_text())
    assert idx["dtype"] == "float16" and idx["M"] == M
    # batches: (latents, rate position)
    y, t = train.sample(5, 8, np.random.default_rng(0), TINY_CONFIG.anchors)
    assert y.shape == (5, M, 8, 8) and y.dtype == torch.float32
    assert t.shape == (5,) and float(t.min()) >= 0 and float(t.max()) <= TINY_CONFIG.anchors - 1
    with pytest.raises(ValueError):
        train.sample(2, 6, np.random.default_rng(0), 2)


def randomise_context(model: EntropyModel, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.context_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def params_of(model, yg, mh, lh):
    with torch.no_grad():
        mu, ls, _ = model.params(yg, mh, lh)
    return mu, ls


@pytest.mark.parametrize("name", ["cb", "elic"])
def test_two_pass_decode_order_is_causal(name):
    base = tiny_base()
    model = build_variant(base, name)
    randomise_context(model)
    g = torch.Generator().manual_seed(3)
    B, M, h, w = 2, TINY_CONFIG.M, 6, 8
    yg = torch.randn(B, M, h, w, generator=g) * 4
    mh = torch.randn(B, M, h, w, generator=g)
    lh = torch.randn(B, M, h, w, generator=g) * 0.3
    anchor = anchor_mask(h, w).bool().expand(B, 1, h, w)
    mu0, ls0 = params_of(model, yg, mh, lh)
    b = model.bounds
    for gi in range(len(model.groups)):
        c0, c1 = b[gi], b[gi + 1]
        # group gi's non-anchors and every later group may change: group gi's parameters may not
        late = torch.zeros(B, M, h, w, dtype=torch.bool)
        late[:, c0:c1] = ~anchor
        late[:, c1:] = True
        mu1, ls1 = params_of(model, torch.where(late, yg + 37.0 * torch.randn_like(yg), yg), mh, lh)
        assert torch.equal(mu1[:, c0:c1], mu0[:, c0:c1]) and torch.equal(ls1[:, c0:c1], ls0[:, c0:c1])
        # ... and the anchors' parameters do not even see the group's anchors' values (they are coded with them)
        own = torch.zeros(B, M, h, w, dtype=torch.bool)
        own[:, c0:c1] = anchor
        own[:, c1:] = True
        mu2, _ = params_of(model, torch.where(own, yg + 37.0, yg), mh, lh)
        assert torch.equal(mu2[:, c0:c1][anchor.expand(B, c1 - c0, h, w)],
                           mu0[:, c0:c1][anchor.expand(B, c1 - c0, h, w)])
    # the decoder only has y_hat = mu + round(y - mu): moving y without changing any rounding changes nothing
    r = yg - mu0
    safe = (r - torch.floor(r) - 0.5).abs() > 0.02
    mu4, ls4 = params_of(model, yg + 0.01 * safe, mh, lh)
    assert torch.equal(mu4, mu0) and torch.equal(ls4, ls0)
    # the context is not trivially empty: an anchor value moves some non-anchor parameter
    mu3, _ = params_of(model, torch.where(anchor.expand(B, M, h, w), yg + 5.0, yg), mh, lh)
    assert not torch.equal(mu3[~anchor.expand(B, M, h, w)], mu0[~anchor.expand(B, M, h, w)])


def test_variants_start_at_the_shipped_model_and_widening_preserves_h_s():
    base = tiny_base()
    y = torch.randn(3, TINY_CONFIG.M, 8, 8) * 3
    t = torch.tensor([0.0, 0.5, 1.0])
    ref = build_variant(base, "shipped")(y, t, train=False)
    for name in VARIANTS:
        out = build_variant(base, name)(y, t, train=False)
        assert torch.allclose(out["bits_y"], ref["bits_y"], rtol=1e-5), name
        assert torch.allclose(out["bits_z"], ref["bits_z"], rtol=1e-5), name
    z = torch.randn(2, TINY_CONFIG.N, 3, 4)
    wide = widen_hs(base.h_s, 20)
    assert wide[0].out_channels == 20
    assert torch.allclose(wide(z), base.h_s(z), atol=1e-5)


def test_decode_cost_of_the_real_config():
    base = MeanScaleHyperprior(HyperpriorConfig())
    macs = {n: build_variant(base, n).decode_macs_per_pixel(16, 16) for n in ("shipped", "cb", "groups", "elic")}
    assert macs["shipped"]["ctx"] == 0 and 2000 < macs["shipped"]["h_s"] < 2500  # the notes' 2.2k MAC/px
    for n in ("cb", "groups", "elic"):
        assert 0 < macs[n]["ctx"] < 1500, (n, macs[n])  # slim: at most ~5 % of today's decode


def smooth_latents(n, M, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, M, h + 2, w + 2, generator=g) * 6
    x = torch.nn.functional.avg_pool2d(x, 3, stride=1)  # spatially correlated: context can help
    return x


def test_context_training_reduces_held_out_bits():
    torch.manual_seed(0)
    base = tiny_base()
    model = build_variant(base, "elic")
    y_train = smooth_latents(8, TINY_CONFIG.M, 8, 8, 0)
    held = smooth_latents(4, TINY_CONFIG.M, 8, 8, 1)

    class Bank:
        images = list(held)
        pixels = [(128, 128)] * 4

        def __len__(self):
            return len(self.images)

    logK = torch.full((TINY_CONFIG.anchors, TINY_CONFIG.M), -3.0)
    before = evaluate(model, Bank(), logK, TINY_CONFIG.anchors)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        t = torch.rand(8) * (TINY_CONFIG.anchors - 1)
        out = model(y_train, t, torch.exp(logK[0]).expand(8, -1), train=True)
        loss = (out["bits_y"] + out["bits_z"] + out["dist"]).mean() / (128 * 128)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = evaluate(model, Bank(), logK, TINY_CONFIG.anchors)
    assert np.mean(after["bpp"]) < 0.97 * np.mean(before["bpp"]), (before["bpp"], after["bpp"])
    assert all(np.isfinite(after["dpp"]))


@pytest.mark.parametrize("name", ["cb", "elic"])
def test_integer_context_model_matches_float_and_is_causal(name):
    """training/int_context.py: the integer decode-side parameters are close to the float
    model's (means within a few 2^-12 steps), give the same code length to within 1 %,
    and keep the decode order (what is decoded later never changes them)."""
    from training.int_context import IntContextModel, int_bits, round_shift
    from training.models import arch

    base = tiny_base()
    model = build_variant(base, name).eval()
    randomise_context(model, seed=1)
    with torch.no_grad():  # small context outputs, as trained ones are
        for f in list(model.fuse_a) + list(model.fuse_n):
            if isinstance(f, torch.nn.Conv2d):
                f.weight.mul_(0.1)
    g = torch.Generator().manual_seed(5)
    M = TINY_CONFIG.M
    calib = [torch.randn(1, M, 8, 8, generator=g) * 3 for _ in range(6)]
    qm = IntContextModel.calibrate(model, arch(TINY_CONFIG)["h_s"], calib)
    yg = torch.randn(1, M, 8, 12, generator=g) * 3
    z = torch.round(model.h_a(yg))
    mu, idx = qm.params(yg, z)
    # the float model on the same y, with the integer h_s's output as its hyper parameters
    out = qm.h_s(z)
    mh, lh = (out[:, :M].double() / 4096).float(), (out[:, M:].double() / 4096).float()
    mu_f, ls_f, _ = model.params(yg, mh, lh)
    assert float((mu - mu_f.double()).abs().max()) < 0.05
    by, bz = int_bits(qm, model, yg)
    assert by > 0 and bz > 0
    # causal: later groups' and this group's non-anchor values do not change a group's anchors
    anchor = anchor_mask(8, 12).bool()
    for gi in range(len(model.groups)):
        c0, c1 = model.bounds[gi], model.bounds[gi + 1]
        late = torch.zeros(1, M, 8, 12, dtype=torch.bool)
        late[:, c0:c1] = ~anchor
        late[:, c1:] = True
        mu2, idx2 = qm.params(torch.where(late, yg + 9.0, yg), z)  # the decoder's z is fixed
        a = anchor.expand(1, c1 - c0, 8, 12)
        assert torch.equal(mu2[:, c0:c1][a], mu[:, c0:c1][a]) and torch.equal(idx2[:, c0:c1][a], idx[:, c0:c1][a])
    # the rounding rule: half up, negative shifts multiply
    v = torch.tensor([-3, -2, -1, 0, 1, 2, 3], dtype=torch.int64)
    assert round_shift(v, 1).tolist() == [-1, -1, 0, 0, 1, 1, 2] and round_shift(v, -2).tolist() == (v * 4).tolist()
