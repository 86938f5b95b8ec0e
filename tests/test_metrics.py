"""Tests of lmcodec.metrics (numpy only; runs without the compiled core)."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest


def _load_metrics():
    try:
        import lmcodec.metrics as m  # needs lmcodec._core (package __init__)

        return m
    except ImportError:
        path = Path(__file__).resolve().parents[1] / "python" / "lmcodec" / "metrics.py"
        spec = importlib.util.spec_from_file_location("_lmcodec_metrics_under_test", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod


metrics = _load_metrics()


def _image(h=200, w=240, seed=0):
    """A smooth synthetic RGB image with some texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([
        128 + 80 * np.sin(xx / 17.0) * np.cos(yy / 23.0),
        128 + 60 * np.cos((xx + yy) / 29.0),
        90 + 0.5 * xx - 0.2 * yy,
    ], axis=-1)
    base += rng.normal(0, 6, base.shape)
    return np.clip(np.round(base), 0, 255).astype(np.uint8)


def _noisy(img, sigma, seed=1):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# MSE / MAE / PSNR


def test_mse_mae_psnr_known_values():
    a = np.zeros((4, 5, 3), np.uint8)
    b = np.full((4, 5, 3), 10, np.uint8)
    assert metrics.mse(a, b) == pytest.approx(100.0)
    assert metrics.mae(a, b) == pytest.approx(10.0)
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255.0 ** 2 / 100.0))
    assert metrics.psnr(a, b) == pytest.approx(28.1308036, abs=1e-6)


def test_psnr_is_over_whole_image_not_per_channel_mean():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[..., 0] = 30  # error in one channel only
    m = 900.0 / 3.0
    assert metrics.mse(a, b) == pytest.approx(m)
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255.0 ** 2 / m))


def test_uint8_does_not_wrap():
    a = np.array([[0, 255]], np.uint8)
    b = np.array([[255, 0]], np.uint8)
    assert metrics.mse(a, b) == pytest.approx(255.0 ** 2)
    assert metrics.mae(a, b) == pytest.approx(255.0)
    assert metrics.psnr(a, b) == pytest.approx(0.0)


def test_psnr_identical_is_inf_and_shape_mismatch_raises():
    a = _image(20, 30)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.mse(a, a) == 0.0
    with pytest.raises(ValueError):
        metrics.mse(a, a[:10])


# --------------------------------------------------------------------------
# MS-SSIM


def _reference_ms_ssim(a, b):
    """Independent, slow MS-SSIM: explicit 2-D windows, per channel, then averaged."""
    from numpy.lib.stride_tricks import sliding_window_view

    t = np.arange(11) - 5.0
    g = np.exp(-t ** 2 / (2 * 1.5 ** 2))
    k = np.outer(g, g)
    k /= k.sum()
    w = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = []
    for ch in range(a.shape[2]):
        x = a[..., ch].astype(np.float64)
        y = b[..., ch].astype(np.float64)
        val = 1.0
        for s in range(5):
            def f(z):
                return np.einsum("ijkl,kl->ij", sliding_window_view(z, (11, 11)), k)
            mx, my = f(x), f(y)
            vx = f(x * x) - mx ** 2
            vy = f(y * y) - my ** 2
            cxy = f(x * y) - mx * my
            cs = (2 * cxy + c2) / (vx + vy + c2)
            if s < 4:
                val *= max(cs.mean(), 0.0) ** w[s]
                x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean(axis=(1, 3))
                y = y.reshape(y.shape[0] // 2, 2, y.shape[1] // 2, 2).mean(axis=(1, 3))
            else:
                lum = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
                val *= max((lum * cs).mean(), 0.0) ** w[s]
        out.append(val)
    return float(np.mean(out))


def test_ms_ssim_identical_is_one():
    a = _image()
    assert metrics.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_ms_ssim_decreases_with_noise():
    a = _image()
    vals = [metrics.ms_ssim(a, _noisy(a, s)) for s in (2, 8, 25, 60)]
    assert all(0 < v < 1 for v in vals)
    assert vals == sorted(vals, reverse=True)
    assert vals[0] > 0.95 and vals[-1] < vals[0] - 0.1


def test_ms_ssim_matches_independent_implementation():
    a = _image(192, 224)  # divisible by 16 so both implementations pool identically
    for sigma in (5, 30):
        b = _noisy(a, sigma, seed=sigma)
        assert metrics.ms_ssim(a, b) == pytest.approx(_reference_ms_ssim(a, b), abs=1e-9)


def test_ms_ssim_is_mean_of_channels_and_greyscale_works():
    a = _image()
    b = _noisy(a, 20)
    per_channel = [metrics.ms_ssim(a[..., c], b[..., c]) for c in range(3)]
    assert metrics.ms_ssim(a, b) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_ms_ssim_symmetric_and_float_input():
    a = _image()
    b = _noisy(a, 15)
    assert metrics.ms_ssim(a, b) == pytest.approx(metrics.ms_ssim(b, a), abs=1e-12)
    assert metrics.ms_ssim(a.astype(np.float32), b.astype(np.float64)) == pytest.approx(
        metrics.ms_ssim(a, b), abs=1e-12)


def test_ms_ssim_reference_object_matches_function():
    a = _image()
    ref = metrics.MsSsimReference(a)
    assert ref.scales == 5
    for s in (3, 20):
        b = _noisy(a, s)
        assert ref.ms_ssim(b) == pytest.approx(metrics.ms_ssim(a, b), abs=1e-12)
        assert ref.ssim(b) == pytest.approx(metrics.ssim(a, b), abs=1e-12)
    with pytest.raises(ValueError):
        ref.ms_ssim(a[:100])


def test_ms_ssim_small_images():
    a = _image(100, 120)
    b = _noisy(a, 10)
    assert metrics.ms_ssim_max_scales(100, 120) == 4
    assert metrics.ms_ssim_max_scales(176, 500) == 5
    assert metrics.ms_ssim_max_scales(10, 500) == 0
    with pytest.raises(ValueError, match="too small"):
        metrics.ms_ssim(a, b)
    v = metrics.ms_ssim(a, b, small="reduce")
    assert 0 < v < 1
    assert metrics.ms_ssim(a, a, small="reduce") == pytest.approx(1.0)
    assert metrics.ms_ssim(a, b, scales=4) == pytest.approx(v)
    tiny = _image(8, 40)
    with pytest.raises(ValueError):
        metrics.ms_ssim(tiny, tiny, small="reduce")
    with pytest.raises(ValueError):
        metrics.ms_ssim(a, b, small="nope")


def test_msssim_db():
    assert metrics.msssim_db(0.9) == pytest.approx(10.0)
    assert metrics.msssim_db(0.99) == pytest.approx(20.0)
    assert metrics.msssim_db(1.0) == math.inf


# --------------------------------------------------------------------------
# Bjøntegaard


R1 = [0.12, 0.25, 0.5, 0.8, 1.3, 2.0]
D1 = [26.0, 28.4, 31.0, 33.1, 35.6, 38.0]


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_bd_rate_identical_curves_is_zero(method):
    assert metrics.bd_rate(R1, D1, R1, D1, method=method) == pytest.approx(0.0, abs=1e-9)
    assert metrics.bd_psnr(R1, D1, R1, D1, method=method) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_bd_rate_ten_percent_fewer_bits(method):
    r2 = [0.9 * r for r in R1]
    assert metrics.bd_rate(R1, D1, r2, D1, method=method) == pytest.approx(-10.0, abs=1e-9)
    # and the other way round: 1/0.9 - 1 = +11.1 %
    assert metrics.bd_rate(r2, D1, R1, D1, method=method) == pytest.approx(100 / 9, abs=1e-9)


def test_bd_rate_with_different_sample_points():
    # rate = exp(d / 4) for curve 1, 20 % fewer bits for curve 2, sampled elsewhere
    d1 = np.linspace(26, 38, 7)
    d2 = np.linspace(25, 37, 5) + 0.3
    r1 = np.exp(d1 / 4)
    r2 = 0.8 * np.exp(d2 / 4)
    assert metrics.bd_rate(r1, d1, r2, d2) == pytest.approx(-20.0, abs=0.2)


def test_bd_psnr_shift():
    d2 = [d + 0.5 for d in D1]
    assert metrics.bd_psnr(R1, D1, R1, d2) == pytest.approx(0.5, abs=1e-9)
    assert metrics.bd_rate(R1, D1, R1, d2) < 0  # better quality -> fewer bits


def test_bd_order_and_non_finite_points_do_not_matter():
    r2 = [0.9 * r for r in R1]
    perm = [3, 0, 5, 1, 4, 2]
    got = metrics.bd_rate([R1[i] for i in perm], [D1[i] for i in perm],
                          r2 + [1.0], D1 + [math.inf])
    assert got == pytest.approx(-10.0, abs=1e-9)


def test_bd_no_overlap_or_too_few_points_is_nan():
    assert math.isnan(metrics.bd_rate([0.1, 0.2], [20, 22], [0.5, 1.0], [30, 33]))
    assert math.isnan(metrics.bd_psnr([0.1, 0.2], [20, 22], [0.5, 1.0], [30, 33]))
    assert math.isnan(metrics.bd_rate([0.1], [20], [0.1], [20]))
    assert math.isnan(metrics.bd_rate(R1[:3], D1[:3], R1[:3], D1[:3], method="cubic"))
    with pytest.raises(ValueError):
        metrics.bd_rate([0.1, 0.2], [20], R1, D1)
    with pytest.raises(ValueError):
        metrics.bd_rate(R1, D1, R1, D1, method="linear")


def test_pchip_integral_matches_scipy():
    interp = pytest.importorskip("scipy.interpolate")
    rng = np.random.default_rng(3)
    for _ in range(50):
        x = np.sort(rng.choice(np.linspace(0, 10, 101), size=rng.integers(2, 8), replace=False))
        y = rng.normal(size=x.size)
        lo, hi = np.sort(rng.uniform(x[0], x[-1], 2))
        ref = interp.PchipInterpolator(x, y).integrate(lo, hi)
        assert metrics._pchip_integral(x, y, lo, hi) == pytest.approx(ref, abs=1e-10)
