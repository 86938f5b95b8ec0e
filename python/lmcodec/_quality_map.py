"""Spatial quality maps: from a user's array, ROI mask or the automatic
saliency to the per-block quality offsets the stream stores (QMAP chunk,
docs/format.md).

The stream holds one signed offset in whole quality points (-99..99) per
64x64 block of the image; the block is coded at clamp(quality + offset, 1,
100). Everything here is plain numpy and runs before the C++ encoder.
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ._core import LmcError

BLOCK = 64
MAX_OFFSET = 99
ROI_STRENGTH = 30.0  # quality points between a block fully inside a ROI and one fully outside
AUTO_STRENGTH = 30.0  # quality points between the smoothest and the busiest block (roi="auto"; chosen on training images)


def grid(height: int, width: int) -> Tuple[int, int]:
    """(rows, cols) of the block grid of a height x width image."""
    return (height + BLOCK - 1) // BLOCK, (width + BLOCK - 1) // BLOCK


def _as_2d(m: Any, what: str) -> np.ndarray:
    try:
        a = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise LmcError(f"{what} must be a 2-D numeric array: {e}") from e
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):  # an image: its mean over colour channels (alpha ignored)
        a = a[..., : min(3, a.shape[2])].mean(axis=2)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise LmcError(f"{what} must be a 2-D array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise LmcError(f"{what} has NaN or infinite values")
    return a


def resample(m: np.ndarray, height: int, width: int) -> np.ndarray:
    """m (any resolution, taken to cover the whole image) averaged over each
    64x64 block of a height x width image: (rows, cols) float64. Each block
    takes the mean of the cells of m its pixels fall in (area average when m
    is finer than the grid, the covering cell when it is coarser); a map of
    exactly (rows, cols) is one value per block as it is."""
    rows, cols = grid(height, width)
    mh, mw = m.shape
    if (mh, mw) == (rows, cols):  # already one value per block
        return m.astype(np.float64)

    def spans(n_blocks: int, size: int, msize: int):
        out = []
        for b in range(n_blocks):
            p0, p1 = b * BLOCK, min(size, (b + 1) * BLOCK)
            a = int(np.floor(p0 * msize / size))
            e = max(a + 1, int(np.ceil(p1 * msize / size)))
            out.append((a, min(e, msize)))
        return out

    ry, rx = spans(rows, height, mh), spans(cols, width, mw)
    out = np.empty((rows, cols))
    for i, (a, b) in enumerate(ry):
        band = m[a:b].mean(axis=0)
        for j, (c, d) in enumerate(rx):
            out[i, j] = band[c:d].mean()
    return out


def offsets_from_map(quality_map: Any, height: int, width: int) -> np.ndarray:
    """A user's quality_map (quality offsets in quality points, any
    resolution) -> (rows, cols) int8 block offsets. LmcError outside -99..99."""
    a = _as_2d(quality_map, "quality_map")
    off = np.rint(resample(a, height, width))
    if off.min() < -MAX_OFFSET or off.max() > MAX_OFFSET:
        raise LmcError(f"quality_map offsets must be in -{MAX_OFFSET}..{MAX_OFFSET} quality points, got "
                       f"{off.min():g}..{off.max():g}")
    return off.astype(np.int8)


def _balanced(f: np.ndarray, strength: float) -> np.ndarray:
    """strength * (f - mean f), rounded to int8 offsets: blocks with more of the
    wanted property get more quality, the others less, the mean offset ~0."""
    off = np.rint(strength * (f - f.mean()))
    return np.clip(off, -MAX_OFFSET, MAX_OFFSET).astype(np.int8)


def roi_fraction(mask: Any, height: int, width: int) -> np.ndarray:
    """The fraction of each 64x64 block inside the ROI (mask: any resolution;
    white / nonzero = important; an 8-bit image is read as value / 255)."""
    a = _as_2d(mask, "roi mask")
    if a.max() > 1.0:
        a = a / 255.0
    return resample(np.clip(a, 0.0, 1.0), height, width)


def offsets_from_roi(mask: Any, height: int, width: int, strength: float = ROI_STRENGTH) -> np.ndarray:
    """ROI mask -> block offsets: strength * (fraction inside - mean fraction)."""
    return _balanced(roi_fraction(mask, height, width), strength)


def saliency(image: np.ndarray) -> np.ndarray:
    """The automatic mode's importance per 64x64 block, in [0, 1]: the block's
    mean local gradient magnitude of luma (|dx| + |dy|), rank-normalised over
    the image (0 = the smoothest block, 1 = the busiest)."""
    a = np.asarray(image, dtype=np.float32)
    luma = a if a.ndim == 2 else a[..., : min(3, a.shape[2])].mean(axis=2)
    h, w = luma.shape
    g = np.zeros_like(luma)
    g[:, :-1] += np.abs(np.diff(luma, axis=1))
    g[:-1, :] += np.abs(np.diff(luma, axis=0))
    s = resample(g.astype(np.float64), h, w)
    ranks = np.argsort(np.argsort(s, axis=None), axis=None).reshape(s.shape).astype(np.float64)
    return ranks / max(1, s.size - 1)


def offsets_by_structure(image: np.ndarray, strength: float) -> np.ndarray:
    """strength * (structure rank - mean): positive = more quality where the
    local structure / edges are, negative = more where the image is smooth."""
    return _balanced(saliency(image), strength)


def offsets_auto(image: np.ndarray, strength: float = None) -> np.ndarray:
    """roi="auto": more quality where the image is SMOOTH, less where it is
    busy, by `strength` quality points between the smoothest and the busiest
    block (default AUTO_STRENGTH). The direction is measured, not guessed
    (benchmarks/roi.py auto, docs/results/roi.md): on held-out training
    images at equal file size, favouring edges and structure (the intuitive
    choice) lowered MS-SSIM by 0.2-0.5 dB, favouring smooth regions (where
    the eye and MS-SSIM see banding and smearing, and which texture does not
    mask) raised it."""
    return offsets_by_structure(image, -(AUTO_STRENGTH if strength is None else strength))
