"""Image-quality metrics and Bjøntegaard deltas (numpy only).

Everything here works on plain numpy arrays and imports nothing from the rest
of the package, so it can be used (and tested) without the compiled core.

Conventions
-----------
* Images are ``H x W`` (grey) or ``H x W x C`` arrays of 8-bit values
  (any integer/float dtype holding values in ``[0, data_range]``).
* :func:`psnr` is the *RGB PSNR*: one MSE over every pixel and channel of the
  image, ``10 * log10(255**2 / MSE)``; identical images give ``inf``.
* :func:`ms_ssim` follows Wang, Simoncelli & Bovik (2003): 5 scales, an
  11x11 Gaussian window with sigma 1.5 ("valid" filtering, no padding),
  ``K1 = 0.01``, ``K2 = 0.03``, weights
  ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``, 2x2 average pooling between
  scales (an odd last row/column is dropped).  For colour images the index is
  computed **per channel and then averaged over the channels**, which is what
  CompressAI reports (it calls ``pytorch_msssim.ms_ssim`` on RGB tensors).
  As in ``pytorch_msssim``, negative contrast-structure terms are clamped to 0
  before the fractional powers.  The coarsest scale must still hold one full
  11x11 window, i.e. the short side must be at least ``11 * 2**(scales-1)``
  (176 px for 5 scales); smaller images raise :class:`ValueError`, or, with
  ``small="reduce"``, use as many scales as fit (weights renormalised).
* :func:`bd_rate` / :func:`bd_psnr` implement Bjøntegaard's delta measures
  (VCEG-M33), by default with piecewise cubic Hermite (PCHIP, Fritsch-Carlson)
  interpolation as recommended in VCEG-AL22 / JVET common test conditions,
  integrated exactly; ``method="cubic"`` gives the original degree-3
  polynomial fit (``numpy.polyfit``), which needs at least 4 points per curve.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

__all__ = [
    "mse",
    "mae",
    "psnr",
    "ssim",
    "ms_ssim",
    "ms_ssim_max_scales",
    "MsSsimReference",
    "msssim_db",
    "bd_rate",
    "bd_psnr",
    "MS_SSIM_WEIGHTS",
]

#: Scale weights of Wang et al. (2003), finest scale first.
MS_SSIM_WEIGHTS: Tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

_WIN_SIZE = 11
_WIN_SIGMA = 1.5
_K1 = 0.01
_K2 = 0.03


# --------------------------------------------------------------------------
# pixel-wise metrics


def _pair(a, b) -> Tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("empty image")
    return a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)


def mse(a, b) -> float:
    """Mean squared error over all pixels and channels."""
    x, y = _pair(a, b)
    d = x - y
    return float(np.mean(d * d))


def mae(a, b) -> float:
    """Mean absolute error over all pixels and channels."""
    x, y = _pair(a, b)
    return float(np.mean(np.abs(x - y)))


def psnr(a, b, data_range: float = 255.0) -> float:
    """PSNR in dB over the whole image: ``10*log10(data_range**2 / MSE)``.

    Returns ``inf`` for identical images.
    """
    m = mse(a, b)
    if m == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range * data_range / m)


# --------------------------------------------------------------------------
# SSIM / MS-SSIM


def _gaussian_window(size: int = _WIN_SIZE, sigma: float = _WIN_SIGMA) -> np.ndarray:
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(t * t) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray, block: int = 32) -> np.ndarray:
    """Separable 'valid' filtering of the last two axes of ``x`` with ``g``.

    ``g`` must be symmetric (odd length): pairs of taps are folded, sums are
    done in place and the image is processed in bands of ``block`` output
    rows per 2-D plane so that the working set stays in cache.
    """
    n = g.size
    c = n // 2
    h, w = x.shape[-2], x.shape[-1]
    oh, ow = h - n + 1, w - n + 1
    planes = x.reshape((-1, h, w))
    out = np.empty((planes.shape[0], oh, ow), dtype=np.float64)
    rows = np.empty((block, w), dtype=np.float64)
    tmp = np.empty((block, w), dtype=np.float64)
    tmp2 = np.empty((block, ow), dtype=np.float64)
    for p in range(planes.shape[0]):
        src = planes[p]
        dst = out[p]
        for r0 in range(0, oh, block):
            b = min(block, oh - r0)
            r, t = rows[:b], tmp[:b]
            np.multiply(src[r0 + c:r0 + c + b], g[c], out=r)
            for i in range(c):
                np.add(src[r0 + i:r0 + i + b], src[r0 + n - 1 - i:r0 + n - 1 - i + b], out=t)
                t *= g[i]
                r += t
            o, t2 = dst[r0:r0 + b], tmp2[:b]
            np.multiply(r[:, c:c + ow], g[c], out=o)
            for i in range(c):
                np.add(r[:, i:i + ow], r[:, n - 1 - i:n - 1 - i + ow], out=t2)
                t2 *= g[i]
                o += t2
    return out.reshape(x.shape[:-2] + (oh, ow))


def _to_chw(a) -> np.ndarray:
    x = np.asarray(a)
    if x.size == 0:
        raise ValueError("empty image")
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 3:
        x = np.moveaxis(x, -1, 0)
    else:
        raise ValueError(f"expected an H x W or H x W x C image, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float64)


def _downsample(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    x = x[..., : 2 * h, : 2 * w]
    return x.reshape(x.shape[:-2] + (h, 2, w, 2)).mean(axis=(-3, -1))


def ms_ssim_max_scales(height: int, width: int, win_size: int = _WIN_SIZE) -> int:
    """Number of MS-SSIM scales an image of this size supports (0 if none)."""
    side = min(int(height), int(width))
    n = 0
    while side >= win_size:
        n += 1
        side //= 2
    return n


class MsSsimReference:
    """A reference image prepared for repeated (MS-)SSIM comparisons.

    The Gaussian statistics of the reference (mean and variance at every
    scale) are computed once, so comparing many decoded versions of the same
    image costs about 3/5 of calling :func:`ms_ssim` each time::

        ref = MsSsimReference(original)
        scores = [ref.ms_ssim(decode(b)) for b in bitstreams]

    ``scales`` / ``small`` as in :func:`ms_ssim`; :attr:`scales` holds the
    number of scales actually used.
    """

    def __init__(self, reference, data_range: float = 255.0, scales: int = 5,
                 small: str = "error", weights: Sequence[float] = MS_SSIM_WEIGHTS):
        if small not in ("error", "reduce"):
            raise ValueError("small must be 'error' or 'reduce'")
        if scales < 1 or scales > len(weights):
            raise ValueError(f"scales must be in 1..{len(weights)}")
        x = _to_chw(reference)
        self.shape = np.shape(reference)
        h, w = x.shape[-2:]
        fit = ms_ssim_max_scales(h, w)
        if fit < scales:
            need = _WIN_SIZE * 2 ** (scales - 1)
            if small == "error" or fit == 0:
                raise ValueError(
                    f"image of {h}x{w} pixels is too small for {scales}-scale MS-SSIM "
                    f"(the short side must be at least {need} px"
                    + ("" if fit == 0 else f"; use small='reduce' to compute it on {fit} scale(s)")
                    + ")")
            scales = fit
        self.scales = scales
        wts = np.asarray(weights[:scales], dtype=np.float64)
        if scales < len(weights):
            wts = wts / wts.sum()  # reduced set: renormalise (the full set is used as published)
        self.weights = wts
        self.c1 = (_K1 * data_range) ** 2
        self.c2 = (_K2 * data_range) ** 2
        self._g = _gaussian_window()
        self._levels = []  # (x, mu_x, var_x) per scale
        for level in range(scales):
            mu, exx = _filter_valid(np.stack([x, x * x]), self._g)
            self._levels.append((x, mu, exx - mu * mu))
            if level < scales - 1:
                x = _downsample(x)

    def _terms(self, level: int, y: np.ndarray):
        x, mu_x, var_x = self._levels[level]
        mu_y, eyy, exy = _filter_valid(np.stack([y, y * y, x * y]), self._g)
        mu_xy = mu_x * mu_y
        cs_map = (2.0 * (exy - mu_xy) + self.c2) / (var_x + (eyy - mu_y * mu_y) + self.c2)
        cs = cs_map.mean(axis=(-2, -1))
        lum = (2.0 * mu_xy + self.c1) / (mu_x * mu_x + mu_y * mu_y + self.c1)
        return (lum * cs_map).mean(axis=(-2, -1)), cs

    def _check(self, image) -> np.ndarray:
        if np.shape(image) != self.shape:
            raise ValueError(f"image shapes differ: {self.shape} vs {np.shape(image)}")
        return _to_chw(image)

    def ms_ssim(self, image) -> float:
        """MS-SSIM of ``image`` against the reference (mean over channels)."""
        y = self._check(image)
        terms = []
        for level in range(self.scales):
            s, cs = self._terms(level, y)
            terms.append(s if level == self.scales - 1 else cs)
            if level < self.scales - 1:
                y = _downsample(y)
        vals = np.maximum(np.stack(terms), 0.0)  # scales x C
        per_channel = np.prod(vals ** self.weights[:, None], axis=0)
        return float(np.mean(per_channel))

    def ssim(self, image) -> float:
        """Single-scale SSIM (finest scale) against the reference."""
        s, _ = self._terms(0, self._check(image))
        return float(np.mean(s))


def ssim(a, b, data_range: float = 255.0) -> float:
    """Single-scale SSIM (Gaussian 11x11, sigma 1.5), averaged over channels."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"image shapes differ: {np.shape(a)} vs {np.shape(b)}")
    return MsSsimReference(a, data_range, scales=1).ssim(b)


def ms_ssim(a, b, data_range: float = 255.0, scales: int = 5, small: str = "error",
            weights: Sequence[float] = MS_SSIM_WEIGHTS) -> float:
    """Multi-scale SSIM (Wang et al. 2003) of ``b`` against ``a``, mean over channels.

    ``small`` says what to do with an image too small for ``scales`` scales
    (short side < ``11 * 2**(scales-1)``, 176 px for 5): ``"error"`` raises
    ValueError; ``"reduce"`` uses the largest number of scales that fits,
    with those weights renormalised to sum 1, and still raises if not even
    one 11x11 window fits.  (The full published weight set, which sums to
    1.0001, is used unchanged.)  For many comparisons against one reference
    use :class:`MsSsimReference`.
    """
    if np.shape(a) != np.shape(b):
        raise ValueError(f"image shapes differ: {np.shape(a)} vs {np.shape(b)}")
    return MsSsimReference(a, data_range, scales, small, weights).ms_ssim(b)


def msssim_db(value) -> float:
    """MS-SSIM expressed in dB: ``-10*log10(1 - value)`` (``inf`` at 1)."""
    v = float(value)
    if not v < 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - v)


# --------------------------------------------------------------------------
# Bjøntegaard deltas


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson derivatives (same rule as scipy's PchipInterpolator)."""
    h = np.diff(x)
    delta = np.diff(y) / h
    n = x.size
    d = np.zeros(n)
    if n == 2:
        d[:] = delta[0]
        return d
    for k in range(1, n - 1):
        if delta[k - 1] * delta[k] > 0:
            w1 = 2.0 * h[k] + h[k - 1]
            w2 = h[k] + 2.0 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])

    def end(h0, h1, m0, m1):
        s = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(s) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(s) > abs(3.0 * m0):
            return 3.0 * m0
        return s

    d[0] = end(h[0], h[1], delta[0], delta[1])
    d[-1] = end(h[-1], h[-2], delta[-1], delta[-2])
    return d


def _hermite_antiderivative(t: float) -> Tuple[float, float, float, float]:
    """Integrals from 0 to t of the four cubic Hermite basis functions."""
    t2 = t * t
    t3 = t2 * t
    t4 = t3 * t
    return (t4 / 2.0 - t3 + t,              # h00 = 2t^3 - 3t^2 + 1
            t4 / 4.0 - 2.0 * t3 / 3.0 + t2 / 2.0,  # h10 = t^3 - 2t^2 + t
            -t4 / 2.0 + t3,                  # h01 = -2t^3 + 3t^2
            t4 / 4.0 - t3 / 3.0)             # h11 = t^3 - t^2


def _pchip_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact integral of the PCHIP interpolant of (x, y) over [lo, hi] within [x0, xn]."""
    d = _pchip_slopes(x, y)
    total = 0.0
    for k in range(x.size - 1):
        a = max(lo, x[k])
        b = min(hi, x[k + 1])
        if b <= a:
            continue
        h = x[k + 1] - x[k]
        ta = (a - x[k]) / h
        tb = (b - x[k]) / h
        fa = _hermite_antiderivative(ta)
        fb = _hermite_antiderivative(tb)
        coef = (y[k], h * d[k], y[k + 1], h * d[k + 1])
        total += h * sum(c * (ib - ia) for c, ia, ib in zip(coef, fa, fb))
    return total


def _poly_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    p = np.polyint(np.polyfit(x, y, 3))
    return float(np.polyval(p, hi) - np.polyval(p, lo))


def _prepare(x, y) -> Tuple[np.ndarray, np.ndarray]:
    """Finite points sorted by x, points sharing an x averaged."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ValueError(f"curve has {x.size} x values but {y.size} y values")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0:
        return x, y
    ux, inv = np.unique(x, return_inverse=True)
    uy = np.bincount(inv, weights=y) / np.bincount(inv)
    return ux, uy


def _bd_average_gap(x1, y1, x2, y2, method: str) -> float:
    if method not in ("pchip", "cubic"):
        raise ValueError("method must be 'pchip' or 'cubic'")
    x1, y1 = _prepare(x1, y1)
    x2, y2 = _prepare(x2, y2)
    need = 4 if method == "cubic" else 2
    if x1.size < need or x2.size < need:
        return math.nan
    lo = max(x1[0], x2[0])
    hi = min(x1[-1], x2[-1])
    if not hi > lo:
        return math.nan
    integ = _pchip_integral if method == "pchip" else _poly_integral
    return (integ(x2, y2, lo, hi) - integ(x1, y1, lo, hi)) / (hi - lo)


def bd_rate(r1, d1, r2, d2, method: str = "pchip") -> float:
    """Bjøntegaard delta rate of curve 2 against curve 1, in percent.

    ``r`` are rates (bpp, bytes, ... > 0) and ``d`` distortions where higher
    is better (PSNR dB, MS-SSIM dB).  log(rate) is interpolated as a function
    of distortion for each curve and the mean gap over the distortion interval
    covered by both curves gives ``(exp(gap) - 1) * 100``.  Negative: curve 2
    needs fewer bits than curve 1 for the same quality.  Returns ``nan`` when
    the distortion ranges do not overlap or a curve has too few valid points
    (2 for PCHIP, 4 for ``method="cubic"``).  Non-finite points are ignored.
    """
    r1 = np.asarray(r1, dtype=np.float64)
    r2 = np.asarray(r2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr1 = np.where(r1 > 0, np.log(np.where(r1 > 0, r1, 1.0)), np.nan)
        lr2 = np.where(r2 > 0, np.log(np.where(r2 > 0, r2, 1.0)), np.nan)
    gap = _bd_average_gap(d1, lr1, d2, lr2, method)
    if math.isnan(gap):
        return math.nan
    return (math.exp(gap) - 1.0) * 100.0


def bd_psnr(r1, d1, r2, d2, method: str = "pchip") -> float:
    """Bjøntegaard delta quality of curve 2 against curve 1 (e.g. dB of PSNR).

    Distortion is interpolated as a function of log(rate) over the rate
    interval common to both curves; positive: curve 2 is better at equal rate.
    Returns ``nan`` without overlap or with too few points.
    """
    r1 = np.asarray(r1, dtype=np.float64)
    r2 = np.asarray(r2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr1 = np.where(r1 > 0, np.log(np.where(r1 > 0, r1, 1.0)), np.nan)
        lr2 = np.where(r2 > 0, np.log(np.where(r2 > 0, r2, 1.0)), np.nan)
    return _bd_average_gap(lr1, d1, lr2, d2, method)
