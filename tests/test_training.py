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
            assert cpp.encode(img, q, rdo=False) == ref.encode(img, q, rdo=False)
            ours = cpp.encode(img, q)  # rate-distortion optimised quantisation (the default)
            theirs = ref.encode(img, q)
            assert ours == theirs
            a = cpp.decode(ours)
            b = ref.decode(ours)
            assert a.shape == (h, w, 3)
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_rdo_cost_table(tiny_export):
    path, _, model = tiny_export
    wf = lmw.read(path)
    k = wf.tensors["rdo.cost"]
    assert k.shape == (TINY_CONFIG.anchors, TINY_CONFIG.M) and k.dtype == np.float32
    assert np.all(np.isfinite(k)) and np.all(k > 0)
    assert wf.meta["rdo.alpha"] == export.RDO_ALPHA
    # the cost of an error grows with lambda: higher anchors (qualities) weigh errors more
    assert k.mean(1)[-1] > k.mean(1)[0]


def test_rdo_changes_only_the_encoder(tiny_export, tmp_path):
    """RDO picks other integers (a smaller stream), any decoder reads it, and
    weights without the table fall back to plain rounding."""
    path, _, _ = tiny_export
    cpp = lmcodec._core.Model(str(path))
    ref = ReferenceCodec(path)
    yy, xx = np.mgrid[0:96, 0:128]
    img = np.stack([128 + 90 * np.sin(xx / (9 + 3 * c)) * np.cos(yy / 13) for c in range(3)], -1).astype(np.uint8)
    rdo, plain = cpp.encode(img, 40), cpp.encode(img, 40, rdo=False)
    assert rdo != plain
    _, r_rdo = ref.decode_symbols(rdo)
    _, r_plain = ref.decode_symbols(plain)
    assert np.abs(r_rdo).sum() < np.abs(r_plain).sum()  # it moves values toward the mean when that pays
    assert np.abs(r_rdo - r_plain).max() == 1  # and never by more than one step
    for data in (rdo, plain):
        a, b = cpp.decode(data), ref.decode(data)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    wf = lmw.read(path)
    tensors = {k: v for k, v in wf.tensors.items() if k != "rdo.cost"}
    bare = tmp_path / "bare.lmw"
    lmw.write(bare, wf.meta, tensors)
    chunks = lambda d: dict(lmcodec._core.internal.container_read(d)[1])  # noqa: E731
    bare_cpp = lmcodec._core.Model(str(bare))
    assert chunks(bare_cpp.encode(img, 40)) == chunks(plain)
    assert chunks(ReferenceCodec(bare).encode(img, 40)) == chunks(plain)


def test_add_rdo_rewrites_the_table(tiny_export, tmp_path):
    path, model_id, _ = tiny_export
    copy = tmp_path / "copy.lmw"
    wf = lmw.read(path)
    lmw.write(copy, wf.meta, {k: v for k, v in wf.tensors.items() if k != "rdo.cost"})
    new_id = export.add_rdo(copy, torch.rand(1, 3, 128, 128), log=lambda *a: None)
    back = lmw.read(copy)
    assert back.model_id == new_id and "rdo.cost" in back.tensors
    assert back.tensors["rdo.cost"].shape == wf.tensors["rdo.cost"].shape


def test_rdo_bit_costs_match_the_coder(tiny_export):
    """The code lengths the RDO quantiser weighs (regular symbols and escapes)
    are what the rANS coder really spends."""
    path, _, _ = tiny_export
    ref = ReferenceCodec(path)
    yc = ref.y_tables
    rng = np.random.default_rng(5)
    for k in (0, len(yc.lengths) // 2, len(yc.lengths) - 1):
        n = int(yc.lengths[k]) - 2
        lo = int(yc.offsets[k])
        regular = rng.integers(lo, lo + n, 4000)
        far = np.concatenate([lo - rng.integers(1, 5000, 300), lo + n - 1 + rng.integers(1, 2**30, 300)])
        for v in (regular, far):
            v = v.astype(np.int32)
            idx = np.full(v.shape, k, dtype=np.int32)
            real = 8 * len(lmcodec._core.internal.rans_encode(v, idx, yc.cdfs, yc.lengths, yc.offsets))
            est = float(ref._symbol_bits(v.astype(np.int64), idx.astype(np.int64)).sum())
            assert abs(real - est) <= 0.01 * est + 4 * 64 + 32, (k, real, est)


def test_rdo_scale_weights(tiny_export):
    """w_t = (s_t / s_median)^p: 1 at the median index, log-linear around it;
    the median is the smallest index with at least half the elements at or below it."""
    path, _, _ = tiny_export
    ref = ReferenceCodec(path)
    assert ref.rdo_scale_power == export.RDO_SCALE_POWER > 0
    idx = np.array([3] * 5 + [10] * 4 + [40] * 1)
    w = ref.scale_weights(idx)
    assert w[3] == 1.0 and w.dtype == np.float32
    assert np.isclose(w[4] / w[3], np.exp(ref.rdo_scale_power * ref.log_scale_step), rtol=1e-6)
    assert np.all(np.diff(w) > 0)
    assert ref.scale_weights(np.array([3] * 4 + [10] * 6))[10] == 1.0


def test_training_shard(data_dir, tmp_path):
    """The shard builder keeps the source's validation split on the same
    positions and stays under its size budget; the patch bank reads it."""
    from training import shard
    from training.data import VAL_EVERY, PatchBank, list_images

    out = tmp_path / "shard"
    info = shard.build(out, data_dir, size=64, max_mib=1.0, quality=80, max_crops=2 * VAL_EVERY + 3, seed=3)
    files = sorted(out.glob("*.webp"))
    assert info["crops"] == len(files) == 2 * VAL_EVERY + 3
    assert sum(f.stat().st_size for f in files) == info["bytes"] <= 1 << 20
    assert (out / "SHARD.txt").read_text().startswith("lmcodec training shard")
    with Image.open(files[0]) as im:
        assert im.size == (64, 64)
    bank, val = PatchBank(out, "train", min_side=64), PatchBank(out, "val", min_side=64)
    assert len(bank) + len(val) == len(files) and len(val) == 3
    assert bank.batch(2, 48).shape == (2, 3, 48, 48)
    # a tight budget stops early, before the file that would pass it
    small = shard.build(tmp_path / "small", data_dir, size=64, max_mib=4 * files[0].stat().st_size / (1 << 20),
                        quality=80, seed=3)
    assert 1 <= small["crops"] < 8 and small["bytes"] <= 4 * files[0].stat().st_size
    # the source split carries over: validation crops come from validation images only
    colours = tmp_path / "colours"
    colours.mkdir()
    for i in range(VAL_EVERY + 1):
        rgb = (200, 30, 30) if i % VAL_EVERY == 0 else (30, 30, 200)  # validation images red, the rest blue
        Image.new("RGB", (80, 72), rgb).save(colours / f"c_{i:03d}.png")
    assert len([f for i, f in enumerate(list_images(colours)) if i % VAL_EVERY == 0]) == 2
    shard.build(tmp_path / "split", colours, size=64, quality=90, max_crops=VAL_EVERY + 5, seed=1)
    for k, f in enumerate(sorted((tmp_path / "split").glob("*.webp"))):
        r, _, b = np.asarray(Image.open(f).convert("RGB"), dtype=np.float64).mean(axis=(0, 1))
        assert (r > b) == (k % VAL_EVERY == 0), f.name


def test_export_from_compact_state(data_dir, tmp_path):
    """A GPU run hands back compact fp16 states (tools/gpu_train.sh); the
    export takes one as --ckpt and writes a weights file the codec loads."""
    from training import train

    cache = tmp_path / "cache"
    assert train.main(["--tiny", "--steps", "3", "--batch", "2", "--patch", "64", "--data", str(data_dir),
                       "--cache", str(cache), "--val-every", "0", "--no-progress", "--seed", "4"]) == 0
    st = torch.load(cache / "state.pt", weights_only=False)
    train.save_compact({**st, "model": st["ema"]}, tmp_path / "ema.pt")
    out = tmp_path / "from_compact.lmw"
    assert export.main(["--ckpt", str(tmp_path / "ema.pt"), "--out", str(out), "--calib", "2",
                        "--data", str(data_dir)]) == 0
    assert lmw.read(out).meta["train.steps"] == 3
    m = export.load_hyperprior_weights(None, out)
    ema16 = {k: v.half().float() for k, v in st["ema"].items() if v.is_floating_point()}
    # the exported float layers come from the EMA weights (fp16-rounded), not the raw ones
    w = dict(m.named_parameters())
    name = next(k for k in ema16 if k.startswith("g_s") and k.endswith("weight") and k in w)
    assert torch.allclose(w[name], ema16[name], rtol=0.05, atol=1e-3)


def test_finetune_decoder_keeps_the_streams(tiny_export, data_dir, tmp_path):
    """Decoder fine-tuning changes only decoder tensors: the encoder writes the
    same symbols with the new file (only the model id in the header differs),
    and the decoder tensors did move."""
    from training import finetune_decoder

    path, _, _ = tiny_export
    out = tmp_path / "ft.lmw"
    assert finetune_decoder.main(["--weights", str(path), "--out", str(out), "--data", str(data_dir), "--steps", "3",
                                  "--batch", "2", "--patch", "64", "--val-count", "2", "--val-every", "0",
                                  "--lr", "1e-3", "--threads", "1"]) == 0
    a, b = lmw.read(path), lmw.read(out)
    assert b.meta["finetune.decoder_steps"] == 3
    moved = {k for k in a.tensors if not np.array_equal(a.tensors[k], b.tensors[k])}
    assert moved and all(k.startswith(("g_s", "inv_gain")) for k in moved), moved
    m0, m1 = lmcodec._core.Model(str(path)), lmcodec._core.Model(str(out))
    img = np.asarray(Image.open(sorted(data_dir.glob("*.png"))[0]).convert("RGB"))
    for q in (20, 80):
        s0, s1 = bytes(m0.encode(img, q, 1, 0, True)), bytes(m1.encode(img, q, 1, 0, True))
        assert len(s0) == len(s1)
        assert sum(x != y for x, y in zip(s0, s1)) <= 20  # model id (16 bytes) and the header CRC
        assert m1.decode(s1, 1).shape == img.shape


def test_gdn_gamma_stays_diagonal():
    """Off-diagonal gamma entries start at 0 where the square has zero
    gradient, so training keeps GDN diagonal; the shipped weights are, which
    is what lets the core skip the channel matrix product (same bits)."""
    from training.layers import GDN

    torch.manual_seed(0)
    for inverse in (False, True):
        g = GDN(8, inverse=inverse)
        opt = torch.optim.Adam(g.parameters(), lr=1e-2)
        for _ in range(5):
            x = torch.randn(2, 8, 6, 6)
            loss = (g(x) - x.flip(1)).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        _, gamma = g.effective_params()
        off = gamma - torch.diag(torch.diagonal(gamma))
        assert torch.count_nonzero(off) == 0
        assert torch.all(torch.diagonal(gamma) > 0)
    shipped = lmw.read(lmcodec._api.MODELS_DIR / "hyperprior.lmw")
    names = [k for k in shipped.tensors if k.endswith(".gamma")]
    assert len(names) == 6
    for k in names:
        gm = np.asarray(shipped.tensors[k])
        c = int(round(gm.size ** 0.5))
        gm = gm.reshape(c, c)
        assert np.count_nonzero(gm - np.diag(np.diag(gm))) == 0, k


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1e-3])
def test_weights_with_bad_gdn_gamma_are_refused(tiny_export, tmp_path, bad):
    """A GDN gamma that is negative or not finite is refused when the model
    loads (it would otherwise turn every pixel into NaN)."""
    from lmcodec import _core

    path, _, _ = tiny_export
    wf = lmw.read(path)
    tensors = {k: np.array(v, copy=True) for k, v in wf.tensors.items()}
    name = next(k for k in tensors if k.startswith("g_s.") and k.endswith(".gamma"))
    tensors[name].reshape(-1)[0] = bad
    out = tmp_path / "bad.lmw"
    lmw.write(out, dict(wf.meta), tensors)
    _core.Model(str(path))  # the original loads
    with pytest.raises(lmcodec.LmcError, match="gamma"):
        _core.Model(str(out))


def test_torchrun_two_ranks_match_one_process(data_dir, tmp_path):
    """Data-parallel training (torchrun, DDP over gloo, 2 CPU processes) gives the weights one process gives
    with the same global batch, up to the order of floating-point sums."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from training import train

    common = ["--tiny", "--steps", "3", "--batch", "4", "--patch", "64", "--data", str(data_dir), "--val-every", "0",
              "--no-progress", "--warmup", "1", "--seed", "7", "--threads", "1", "--lr", "1e-4"]
    assert train.main(common + ["--cache", str(tmp_path / "one")]) == 0
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "training.train"] + common + ["--cache", str(tmp_path / "two")],
                       cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    one = torch.load(tmp_path / "one" / "state.pt", weights_only=False)
    two = torch.load(tmp_path / "two" / "state.pt", weights_only=False)
    assert one["step"] == two["step"] == 3
    worst = 0.0
    for k, v in one["model"].items():
        if v.is_floating_point():
            worst = max(worst, float((v - two["model"][k]).abs().max()))
        else:
            assert torch.equal(v, two["model"][k]), k
    # Adam moves each weight by at most ~lr per step: a different batch would differ by ~1e-4 here
    assert worst < 2e-6, worst
    assert not (tmp_path / "two" / "log.csv").exists() or (tmp_path / "two" / "log.csv").read_text().count("\n") >= 1
