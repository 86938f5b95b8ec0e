"""``lmcodec.explain``: where a hyperprior stream spends its bits and what
its latent channels carry.

    >>> ex = lmcodec.explain(image, quality=50)          # or explain(stream_bytes)
    >>> ex.bits_y.shape == image.shape[:2]               # bits per pixel of the latents
    True

Every number comes from the real stream: the image is encoded (with the same
options as lmcodec.encode), the stream's symbols are decoded as the decoder
decodes them, and each symbol's code length is -log2(freq / 2^16) under the
table the coder used (escapes included). So bits_y / bits_z sum to the LATN (or LATC) /
SIDE payloads up to the rANS flush (a few bytes per chunk). The report
(``lmcodec explain IMAGE -o report/``) is written by _explain_report.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import _api, _core
from ._core import LmcError

# channel groups of the "one group kept" views, by rate rank (strongest first)
GROUPS = ((0, 4), (4, 16), (16, 48), (48, None))


@dataclass
class Explanation:
    """What lmcodec.explain returns (all numpy arrays; H x W = the image)."""

    width: int
    height: int
    quality: float
    stream: bytes
    bits_y: np.ndarray            # (H, W) bits per pixel spent on the latents y (each 16x16 cell's share)
    bits_z: np.ndarray            # (H, W) bits per pixel spent on the hyper-latents z (each 64x64 cell's share)
    symbol_bits_y: np.ndarray     # (M, H/16, W/16) padded grid: code length of every y symbol
    symbol_bits_z: np.ndarray     # (N, H/64, W/64) padded grid: code length of every z symbol
    payload_bytes: Dict[str, int]  # {"SIDE": ..., "LATN" or "LATC" (a context model's latents): ...}

    @property
    def latent_chunk(self) -> str:
        """The latents chunk's type: "LATC" for a model with a context model, else "LATN"."""
        return next(k for k in self.payload_bytes if k != "SIDE")
    channel_rate: np.ndarray      # (M,) bits spent on each latent channel
    channel_energy: np.ndarray    # (M,) mean square of each channel's dequantised latent (g_s's input)
    channel_order: np.ndarray     # (M,) channels by rate, highest first
    decoded: np.ndarray           # (H, W, 3) uint8, what lmcodec.decode gives
    groups: List[Tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (channels, (H, W, 3) image)
    error: Optional[np.ndarray] = None       # (H, W) mean |x - x_hat| over R, G, B (None without a source)
    quality_map: Optional[np.ndarray] = None  # (rows, cols) int8 offsets of the stream's QMAP, or None

    @property
    def total_bits(self) -> float:
        return float(self.symbol_bits_y.sum() + self.symbol_bits_z.sum())

    @property
    def bpp(self) -> float:
        """File size in bits per pixel (container included)."""
        return len(self.stream) * 8 / (self.width * self.height)


def _weights_path(header: Dict[str, Any]) -> str:
    """The weights file that decodes this stream (current or archived model)."""
    if int(header["codec"]) != 1:
        raise LmcError("explain needs a hyperprior stream (this one is codec "
                       f"{_api.CODEC_NAMES.get(int(header['codec']), header['codec'])})")
    mid = bytes(header["model_id"]).hex()
    _api._model_for_stream(1, mid)  # ModelMismatch for an unknown model, as decode gives
    if _api._current_ids.get("hyperprior") == mid:
        return str(_api.MODELS_DIR / "hyperprior.lmw")
    return str(_api.archive_path("hyperprior", mid))


def _per_pixel(cell_bits: np.ndarray, cell: int, height: int, width: int) -> np.ndarray:
    """(rows, cols) bits of cells of cell x cell pixels -> (H, W) bits per pixel."""
    per = np.repeat(np.repeat(cell_bits / float(cell * cell), cell, axis=0), cell, axis=1)
    return per[:height, :width].astype(np.float32)


def _rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        return np.repeat(a[..., None], 3, axis=2)
    return a[..., :3]


def explain(image_or_stream: Any, quality: float = 75, *, source: Any = None, threads: Optional[int] = None,
            groups: Any = GROUPS, **encode_options: Any) -> Explanation:
    """Explain an image (encoded first with lmcodec.encode(image, quality,
    **encode_options), e.g. quality_map= or roi=) or an existing .lmc stream
    (bytes; quality and encode options are then the stream's own). source:
    the original image of a stream, for the error map. groups: (start, stop)
    ranges of channel ranks (by rate, highest first) to decode alone, the
    other channels set to their mean over the image."""
    if isinstance(image_or_stream, (bytes, bytearray, memoryview)):
        data = bytes(image_or_stream)
        if encode_options:
            raise LmcError(f"encode options {sorted(encode_options)} do not apply to an existing stream")
    else:
        src = _api._to_array(image_or_stream)
        if source is not None:
            raise LmcError("source is only for a stream; an image is its own source")
        source = src
        data = _api.encode(src, quality, threads=threads, **encode_options)
    header = _core.internal.container_header(data)
    path = _weights_path(header)
    nthreads = _api._threads(threads)
    d = _core.internal.hyperprior_explain(path, data, nthreads)
    w, h = int(d["width"]), int(d["height"])
    by, bz = np.asarray(d["bits_y"]), np.asarray(d["bits_z"])
    y_hat = np.asarray(d["y_hat"])
    rate = by.reshape(by.shape[0], -1).sum(axis=1).astype(np.float64)
    energy = (y_hat.astype(np.float64) ** 2).reshape(y_hat.shape[0], -1).mean(axis=1)
    order = np.argsort(-rate, kind="stable")
    decoded = _core.internal.hyperprior_synthesize(path, y_hat, w, h, nthreads)
    views = []
    means = y_hat.reshape(y_hat.shape[0], -1).mean(axis=1).astype(np.float32)
    for a, b in groups:
        keep = order[a:b]
        if keep.size == 0:
            continue
        y = np.broadcast_to(means[:, None, None], y_hat.shape).copy()
        y[keep] = y_hat[keep]
        views.append((keep, _core.internal.hyperprior_synthesize(path, y, w, h, nthreads)))
    err = None
    if source is not None:
        s = _rgb(_api._to_array(source))
        if s.shape[:2] != (h, w):
            raise LmcError(f"source is {s.shape[1]}x{s.shape[0]}, the stream {w}x{h}")
        err = np.abs(s.astype(np.int16) - decoded.astype(np.int16)).mean(axis=2).astype(np.float32)
    qm = d["quality_map"]
    return Explanation(width=w, height=h, quality=float(d["quality"]), stream=data,
                       bits_y=_per_pixel(by.sum(axis=0), 16, h, w), bits_z=_per_pixel(bz.sum(axis=0), 64, h, w),
                       symbol_bits_y=by, symbol_bits_z=bz,
                       payload_bytes={"SIDE": int(d["side_bytes"]), str(d["latent_chunk"]): int(d["latent_bytes"])},
                       channel_rate=rate, channel_energy=energy, channel_order=order, decoded=decoded, groups=views,
                       error=err, quality_map=None if qm is None else np.asarray(qm))
