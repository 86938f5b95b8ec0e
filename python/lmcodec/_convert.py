"""The one conversion from what a user hands lmcodec to the 8-bit samples it codes.

Used by ``lmcodec.encode`` (and so by the Pillow plugin and the command line),
so that every path gives the same picture. The rules (documented in the
README, "Accepted images"):

* uint8 arrays and PIL images in modes L, RGB and RGBA are coded as they are.
* 16-bit samples (numpy ``uint16``; PIL ``I;16``, ``I;16L``, ``I;16B``,
  ``I;16N``; PIL ``I`` with values in 0..65535) are scaled to 8 bits with
  rounding: ``round(v / 257)``, so 65535 -> 255 and 257 -> 1.
* Float samples (numpy float16/32/64, PIL ``F``): when every value lies in
  [0, 1] they are taken as fractions of full scale (``round(v * 255)``);
  otherwise, when every value lies in [0, 255], as 8-bit levels
  (``round(v)``). Anything else (negative values, values above 255, NaN or
  infinity) is refused: lmcodec never clips a picture silently.
* bool arrays and PIL ``1`` images become 0 / 255.
* PIL ``LA``, ``La``, ``PA``, ``RGBa`` and ``P`` with transparency become
  RGBA; other ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``RGBX`` become
  RGB through Pillow's own conversion.
* Other numpy dtypes (int8, int32, ...) are refused with a message saying how
  to convert them: their range is ambiguous.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._core import LmcError

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_TO_RGBA_MODES = ("LA", "La", "PA", "RGBa")


def scale_16_to_8(a: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255, rounded to nearest (v / 257: the exact inverse of v * 257)."""
    a = a.astype(np.uint32)
    return ((a * 2 + 257) // 514).astype(np.uint8)


def float_to_8(a: np.ndarray, what: str = "float image") -> np.ndarray:
    """Float samples in [0, 1] (fractions) or [0, 255] (levels) -> uint8, rounded."""
    a64 = np.asarray(a, dtype=np.float64)
    if a64.size == 0:
        return a64.astype(np.uint8)
    if not np.all(np.isfinite(a64)):
        raise LmcError(f"{what} holds NaN or infinite values; lmcodec codes finite samples in [0, 1] or [0, 255]")
    lo, hi = float(a64.min()), float(a64.max())
    if lo >= 0.0 and hi <= 1.0:
        return np.rint(a64 * 255.0).astype(np.uint8)
    if lo >= 0.0 and hi <= 255.0:
        return np.rint(a64).astype(np.uint8)
    raise LmcError(f"{what} has values in [{lo:g}, {hi:g}]; lmcodec takes float samples in [0, 1] (fractions of "
                   "full scale) or [0, 255] (8-bit levels) and never clips silently: rescale it first")


def _int_to_8(a: np.ndarray, what: str) -> np.ndarray:
    """PIL mode I (32-bit signed): taken as 16-bit samples, which is what it holds when Pillow reads a 16-bit file."""
    if a.size and (int(a.min()) < 0 or int(a.max()) > 65535):
        raise LmcError(f"{what} has values in [{int(a.min())}, {int(a.max())}]; mode I is taken as 16-bit samples "
                       "(0..65535) and lmcodec never clips silently: rescale it first")
    return scale_16_to_8(a)


def _from_pil(im: Any) -> np.ndarray:
    mode = im.mode
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(im)
    if mode == "1":
        return np.asarray(im).astype(np.uint8) * 255
    if mode in _SIXTEEN_BIT_MODES:
        return scale_16_to_8(np.asarray(im))
    if mode == "I":
        return _int_to_8(np.asarray(im), "a mode I image")
    if mode == "F":
        return float_to_8(np.asarray(im), "a mode F image")
    if mode in _TO_RGBA_MODES or (mode == "P" and "transparency" in im.info):
        return np.asarray(im.convert("RGBA"))
    if mode.startswith("I;16") or mode.startswith("I;32") or mode.startswith("F;"):
        raise LmcError(f"PIL mode {mode} is not supported; convert it to I;16, I or F first")
    try:  # P, CMYK, YCbCr, LAB, HSV, RGBX ...
        return np.asarray(im.convert("RGB"))
    except (ValueError, OSError) as e:
        raise LmcError(f"cannot convert a PIL image of mode {mode} to RGB: {e}") from e


def to_array(image: Any) -> np.ndarray:
    """numpy array or PIL image -> C-contiguous uint8 (H, W), (H, W, 3) or (H, W, 4), by the rules above."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        arr = _from_pil(image)
    elif isinstance(image, np.ndarray):
        arr = image
        if arr.dtype == np.uint8:
            pass
        elif arr.dtype == np.bool_:
            arr = arr.astype(np.uint8) * 255
        elif arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
            arr = scale_16_to_8(arr)
        elif arr.dtype.kind == "f":
            arr = float_to_8(arr, f"the {arr.dtype} array")
        else:
            raise LmcError(f"image dtype {arr.dtype} is not supported: lmcodec takes uint8, uint16 (16-bit, scaled "
                           "to 8 bits), bool or float ([0, 1] or [0, 255]) samples; convert it, e.g. "
                           "a.astype(np.uint8) when its values are 0..255")
    else:
        raise LmcError(f"encode() takes a numpy array or a PIL image, not {type(image).__name__}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise LmcError(f"image shape must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise LmcError(f"image must be at least 1x1; got {arr.shape[1]}x{arr.shape[0]}")
    return np.ascontiguousarray(arr)
