"""The lmcodec Python API: encode / decode / info / check."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np

from . import _convert, _core, _quality_map
from ._core import LmcError

_KERNEL_NAMES = ("auto", "scalar", "avx2", "avx512")
if os.environ.get("LMCODEC_KERNELS", "") not in ("",) + _KERNEL_NAMES:
    import warnings

    warnings.warn(f"LMCODEC_KERNELS={os.environ['LMCODEC_KERNELS']!r} is not one of {', '.join(_KERNEL_NAMES)}: "
                  "ignored (the fastest path is used)", RuntimeWarning, stacklevel=2)

MODELS_DIR = Path(__file__).resolve().parent / "models"
CODECS = {"hyperprior": 1, "pca": 2}
CODEC_NAMES = {v: k for k, v in CODECS.items()}
MODES = {1: "L", 3: "RGB", 4: "RGBA"}

# Limits applied when reading streams (docs/limits.md); change them with
# set_limits(). max_pixels None (the default) follows Pillow's decompression-bomb
# rule, read at call time: PIL.Image.MAX_IMAGE_PIXELS (89,478,485 when Pillow
# is not installed); above it decode() warns (DecompressionBombWarning), above
# twice it decode() refuses (info() above max(2**28, that)); Image.MAX_IMAGE_PIXELS = None turns the
# pixel limit off, as in Pillow. A number set with set_limits(max_pixels=N) is
# a plain limit: refused above N, no warning.
PILLOW_MAX_IMAGE_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)  # Pillow's default, used without Pillow
_LIMIT_DEFAULTS: Dict[str, Optional[int]] = {"max_pixels": None, "max_dimension": 65535,
                                             "max_chunk_bytes": 1 << 30, "max_chunks": 1 << 20}
# accepted values (inclusive); None restores the default
_LIMIT_RANGES = {"max_pixels": (1, 1 << 62), "max_dimension": (1, (1 << 32) - 1),
                 "max_chunk_bytes": (1, 1 << 62), "max_chunks": (3, 1 << 62)}
_limits: Dict[str, Optional[int]] = dict(_LIMIT_DEFAULTS)
_UNSET: Any = object()

try:  # the warning Pillow itself gives, so that one filter covers both
    from PIL.Image import DecompressionBombWarning
except ImportError:  # pragma: no cover - pillow is a dependency
    class DecompressionBombWarning(RuntimeWarning):  # type: ignore[no-redef]
        """An image is larger than the decompression-bomb limit but within twice it."""

_models: Dict[str, Any] = {}
_models_lock = threading.Lock()
# Models of earlier releases, kept so that their streams still decode:
# models/<method>-<first 16 hex digits of the model id>.lmw, loaded on demand.
_archived: Dict[tuple, Any] = {}  # (method, full model id hex) -> model
_current_ids: Dict[str, str] = {}  # method -> model id of the loaded current model
ARCHIVE_ID_DIGITS = 16


def set_limits(*, max_pixels: Any = _UNSET, max_dimension: Any = _UNSET, max_chunk_bytes: Any = _UNSET,
               max_chunks: Any = _UNSET) -> Dict[str, Optional[int]]:
    """Set the limits used when reading streams (decode, info, the Pillow
    plugin); returns the limits now in force. Only the keywords given change;
    None restores a limit's default. Process-wide.

    max_pixels: width * height, 1 .. 2**62; default None = Pillow's rule (warn
    above PIL.Image.MAX_IMAGE_PIXELS, refuse above twice it).
    max_dimension: width and height each, 1 .. 2**32 - 1 (default 65535).
    max_chunk_bytes: data bytes of one chunk, 1 .. 2**62 (default 2**30).
    max_chunks: chunks in a file, HEAD and ENDC included, 3 .. 2**62 (default 2**20).
    A value out of range (0, negative, 2**64, a bool, a float) raises LmcError
    and changes nothing. set_limits(**get_limits()) restores a saved state."""
    new = dict(_limits)
    for key, value in (("max_pixels", max_pixels), ("max_dimension", max_dimension),
                       ("max_chunk_bytes", max_chunk_bytes), ("max_chunks", max_chunks)):
        if value is _UNSET:
            continue
        if value is None:
            new[key] = _LIMIT_DEFAULTS[key]
            continue
        lo, hi = _LIMIT_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
            raise LmcError(f"InvalidArgument: {key} must be None (the default) or an integer in {lo}..{hi} "
                           f"(2**{hi.bit_length() - 1}{' - 1' if hi & 1 else ''}), not {value!r}")
        new[key] = int(value)
    _limits.update(new)
    return dict(_limits)


def get_limits() -> Dict[str, Optional[int]]:
    """The limits in force (max_pixels None: Pillow's rule, see set_limits)."""
    return dict(_limits)


def _pixel_limits() -> "tuple[int, Optional[int]]":
    """(refuse above, warn above or None) for width * height, now."""
    explicit = _limits["max_pixels"]
    if explicit is not None:
        return int(explicit), None
    try:
        from PIL import Image
        bomb = Image.MAX_IMAGE_PIXELS
    except ImportError:  # pragma: no cover - pillow is a dependency
        bomb = PILLOW_MAX_IMAGE_PIXELS
    if bomb is None:  # Pillow's check turned off: only max_dimension remains
        return _LIMIT_RANGES["max_pixels"][1], None
    bomb = max(0, int(bomb))
    return max(1, min(2 * bomb, _LIMIT_RANGES["max_pixels"][1])), bomb


def _read_limits(pixels: bool = True) -> Dict[str, int]:
    """Keyword arguments for the core's container readers (pixels=False: no
    pixel-count limit; the caller checks it with a precise message)."""
    return {"max_pixels": _pixel_limits()[0] if pixels else _LIMIT_RANGES["max_pixels"][1],
            "max_dimension": int(_limits["max_dimension"]), "max_chunk_bytes": int(_limits["max_chunk_bytes"]),
            "max_chunks": int(_limits["max_chunks"])}


# info() reads headers only: with Pillow's rule it refuses above this or the
# decode limit, whichever is larger (Pillow's Image.open makes its own bomb
# check on the size info() reports, and raises DecompressionBombError).
INFO_MIN_MAX_PIXELS = 1 << 28


def _check_pixels(header: Dict[str, Any], warn: bool) -> None:
    """Pillow's decompression-bomb rule (or the explicit max_pixels) on a
    header; warn=False (info): only the refusal, at max(2**28, twice the bomb
    limit) under Pillow's rule."""
    w, h = int(header["width"]), int(header["height"])
    hard, soft = _pixel_limits()
    if not warn and soft is not None:
        hard = max(hard, INFO_MIN_MAX_PIXELS)
        if w * h > hard:
            raise LmcError(f"LimitExceeded: image size {w}x{h} = {w * h} pixels is over the limit max_pixels={hard} "
                           "for headers (the larger of 2**28 and twice PIL.Image.MAX_IMAGE_PIXELS; "
                           "lmcodec.set_limits)")
        return
    if w * h > hard:
        if soft is None:
            raise LmcError(f"LimitExceeded: image size {w}x{h} = {w * h} pixels is over the limit max_pixels={hard} "
                           "(lmcodec.set_limits)")
        raise LmcError(f"LimitExceeded: image size {w}x{h} = {w * h} pixels is over twice the decompression-bomb "
                       f"limit ({soft} = PIL.Image.MAX_IMAGE_PIXELS): refused as a possible decompression bomb; "
                       "if the file is trusted, raise Image.MAX_IMAGE_PIXELS or call "
                       "lmcodec.set_limits(max_pixels=...)")
    if warn and soft is not None and w * h > soft:
        import warnings

        warnings.warn(f"image size {w}x{h} = {w * h} pixels is over the decompression-bomb limit of {soft} pixels "
                      "(PIL.Image.MAX_IMAGE_PIXELS); it could be a decompression bomb DOS attack",
                      DecompressionBombWarning, stacklevel=3)


def _model(name: str):
    if name not in CODECS:
        raise LmcError(f"unknown method {name!r}; choose one of {sorted(CODECS)}")
    with _models_lock:
        m = _models.get(name)
        if m is None:
            path = MODELS_DIR / f"{name}.lmw"
            if not path.exists():
                raise LmcError(f"the {name} weights are not installed ({path})")
            m = _core.Model(str(path))
            _models[name] = m
            _current_ids[name] = str(m.info()["model_id"])
        return m


def _model_id(m) -> str:
    return str(m.info()["model_id"])


def archive_path(method: str, model_id: str) -> Path:
    """Where an earlier release's weights for `method` with this model id (hex)
    live, so that its streams keep decoding after the weights are replaced."""
    return MODELS_DIR / f"{method}-{model_id[:ARCHIVE_ID_DIGITS]}.lmw"


def _model_for_stream(codec: int, model_id: str):
    """The model that decodes a stream: the current one for `codec` when the
    ids match, else the archived weights of that method with that id. The
    cache is keyed on (method, model id), so a stream always meets the same
    model and the same error whatever was decoded before. An id that matches
    no model of this install is refused as such (ModelMismatch)."""
    name = CODEC_NAMES.get(codec)
    if name is None:
        raise LmcError(f"stream uses unknown codec id {codec}")
    current = _model(name)
    if _current_ids[name] == model_id:
        return current
    with _models_lock:
        m = _archived.get((name, model_id))
        if m is None:
            path = archive_path(name, model_id)
            if path.exists():
                m = _core.Model(str(path))
                real = _model_id(m)
                if not real.startswith(model_id[:ARCHIVE_ID_DIGITS]):
                    raise LmcError(f"{path.name} holds model {real}, not {model_id[:ARCHIVE_ID_DIGITS]}... as its name "
                                   "says: the install is damaged")
                _archived[(name, real)] = m
                if real != model_id:  # same 16-digit prefix, another model
                    m = None
        if m is None:
            have = [_current_ids[name]] + [i for i in archived_models(name)]
            raise LmcError(f"ModelMismatch: the stream was made by a model this install does not have: {model_id} "
                           f"({name}; this install decodes {name} streams of {', '.join(have)})")
        return m


def archived_models(method: str = "hyperprior") -> list:
    """Model ids (hex prefixes) of the earlier releases installed for `method`,
    whose streams decode besides the current model's."""
    return sorted(p.stem.split("-", 1)[1] for p in MODELS_DIR.glob(f"{method}-*.lmw"))


def _reset_models() -> None:
    """Forget every loaded model (tests that point MODELS_DIR elsewhere)."""
    with _models_lock:
        _models.clear()
        _current_ids.clear()
        _archived.clear()


def _threads(threads: Optional[int]) -> int:
    if threads is None:
        return 0
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0 or threads > 1024:
        raise LmcError("threads must be None or an integer in 0..1024 (0 = one per core)")
    return threads


def _to_array(image: Any) -> np.ndarray:
    """numpy array or PIL image -> contiguous uint8 array (the rules are in _convert.py)."""
    return _convert.to_array(image)


MAX_ERROR_LIMIT = 255  # the largest max_error (core/residual.h)


def _residual_mode(lossless: Any, max_error: Any) -> Optional[int]:
    """None for lossy coding, else the bound on every sample's error (0 =
    lossless). Anything unclear is refused: these modes must never quietly
    give a lossy file."""
    if not isinstance(lossless, (bool, np.bool_)):
        raise LmcError(f"lossless must be True or False, not {lossless!r}")
    if max_error is not None:
        if isinstance(max_error, (bool, np.bool_)) or not isinstance(max_error, (int, np.integer)) \
                or not 1 <= int(max_error) <= MAX_ERROR_LIMIT:
            raise LmcError(f"max_error must be an integer in 1..{MAX_ERROR_LIMIT} (the largest error allowed on "
                           f"any sample), not {max_error!r}; lossless=True codes exactly")
        if lossless:
            raise LmcError("give either lossless=True (exact) or max_error=k (|error| <= k), not both")
        return int(max_error)
    return 0 if lossless else None


def _check_quality(quality: Any) -> float:
    if isinstance(quality, bool) or not isinstance(quality, (int, float, np.integer, np.floating)):
        raise LmcError(f"quality must be a number in [1, 100], not {quality!r}")
    q = float(quality)
    if not (1.0 <= q <= 100.0):
        raise LmcError(f"quality must be in [1, 100]; got {q}")
    return q


def _as_bytes(data: Any, what: str = "data") -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise LmcError(f"{what} must be bytes-like, not {type(data).__name__}")


_SEARCH_ENCODES = 12  # encodes a max_bytes search makes at most (1 + 1 + 10 halvings)


def encode(image: Any, quality: float = 75, *, threads: Optional[int] = None, method: str = "hyperprior",
           icc_profile: Optional[bytes] = None, exif: Optional[bytes] = None, xmp: Optional[bytes] = None,
           rdo: bool = True, max_bytes: Optional[int] = None, lossless: bool = False,
           max_error: Optional[int] = None, progress: Optional[Callable[[int, int], Any]] = None,
           quality_map: Any = None, roi: Any = None, roi_strength: Optional[float] = None) -> bytes:
    """Encode an image to .lmc bytes.

    image: numpy array (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA, or a PIL
    image. uint8 is coded as it is; uint16 / PIL I;16 and I are scaled to 8
    bits with rounding; float / PIL F in [0, 1] or [0, 255] are rounded to 8
    bits; out-of-range values raise LmcError (never a silent clip); other PIL
    modes are converted like Pillow's WebP plugin does (lmcodec/_convert.py).
    quality: 1 (smallest) .. 100 (best); continuous.
    threads: worker threads (None = one per core).
    method: "hyperprior" (the learned codec) or "pca" (the linear baseline).
    icc_profile / exif / xmp: metadata stored verbatim in optional chunks.
    rdo: rate-distortion optimised quantisation of the latents (hyperprior;
    default): each latent may take the integer on the other side of its value
    when that saves more bits than it costs in quality under the model's own
    trade-off, for about 2-5 % fewer bytes at equal PSNR. False rounds to the
    nearest integer. Either stream decodes the same way; pca ignores it.
    max_bytes: a size budget for the whole file (metadata included): the
    stream is encoded at the highest quality, at most `quality`, whose file
    fits (a bisection over the continuous quality: about 12 encodes when
    `quality` does not fit at once; the quality found is in info().quality).
    LmcError if even quality 1 does not fit.
    lossless: True codes every sample exactly (alpha included). max_error=k
    (an integer 1..255) bounds every sample's error: |decoded - input| <= k
    for every pixel and channel (L-infinity; alpha stays exact). Both use the
    residual coder (docs/lossless.md; quality and rdo are then ignored, and
    max_bytes is refused); info() reports the mode and the bound.
    quality_map: spatial quality (hyperprior): a 2-D array of quality offsets
    in quality points, one per 64x64 block (shape (ceil(H/64), ceil(W/64)))
    or any other resolution (then taken to cover the image and averaged over
    each block), rounded to whole points in -99..99; a block is coded at
    clamp(quality + offset, 1, 100). The map is stored in the stream (QMAP
    chunk, ~1 byte per 64x64 block) and the decoder applies it.
    roi: a region-of-interest mask (2-D array or PIL image, any resolution;
    white / nonzero = important) or "auto" (more quality where the image is
    smooth, less where it is busy: measured to raise MS-SSIM at equal size,
    docs/results/roi.md): turned into offsets of
    roi_strength * (fraction of the block inside - mean fraction), so the
    ROI gains what the rest gives up at about the same size (default
    strength 30; use max_bytes for an exact budget). Not with quality_map.
    progress: called as progress(done, total) after each strip of the image
    (with max_bytes, over the whole search); a truthy return value cancels
    the encode (LmcError). Ctrl-C cancels a long encode in any case.
    """
    bound = _residual_mode(lossless, max_error)
    if bound is not None and max_bytes is not None:
        raise LmcError("max_bytes cannot be combined with lossless / max_error: their size is not adjustable "
                       "(use a lossy quality with max_bytes, or drop max_bytes)")
    if bound is not None and (quality_map is not None or roi is not None):
        raise LmcError("quality_map / roi cannot be combined with lossless / max_error: every sample is coded to "
                       "the same bound")
    if progress is not None and not callable(progress):
        raise LmcError("progress must be a callable (done, total) or None")
    arr = _to_array(image)
    q = _check_quality(quality)
    if not isinstance(rdo, (bool, np.bool_)):
        raise LmcError("rdo must be True or False")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer))
                                  or max_bytes <= 0):
        raise LmcError(f"max_bytes must be a positive integer, not {max_bytes!r}")
    model = _model(method)
    nthreads = _threads(threads)
    meta = {name: (_as_bytes(blob, name) if blob else None)
            for name, blob in (("icc_profile", icc_profile), ("exif", exif), ("xmp", xmp))}
    qmap = _block_offsets(arr, quality_map, roi, roi_strength, method)

    calls = [0]  # encodes so far: with max_bytes, progress spans the ~12 encodes of the search

    def report(done: int, total: int) -> Any:
        if max_bytes is None:
            return progress(done, total)
        return progress(min(calls[0], _SEARCH_ENCODES - 1) * total + done, _SEARCH_ENCODES * total)

    def at(qq: float) -> bytes:
        data = model.encode(arr, qq, nthreads, 0, bool(rdo), report if progress is not None else None,
                            quality_map=qmap, **meta, residual=0 if bound is None else 1, max_error=bound or 0)
        calls[0] += 1
        return data

    data = at(q)
    if max_bytes is None or len(data) <= max_bytes:
        return data
    lo_q, hi_q = 1.0, q
    best = at(lo_q)
    if len(best) > max_bytes:
        raise LmcError(f"cannot fit the image in {int(max_bytes)} bytes: at quality 1 the file takes {len(best)}")
    # the file size grows with quality (up to the RDO's small wiggles): keep
    # the best fitting stream found; 10 halvings resolve ~0.1 quality units
    for _ in range(10):
        mid = (lo_q + hi_q) / 2
        d = at(mid)
        if len(d) <= max_bytes:
            lo_q, best = mid, d
        else:
            hi_q = mid
    return best


def _block_offsets(arr: np.ndarray, quality_map: Any, roi: Any, roi_strength: Any, method: str):
    """The int8 (rows, cols) block offsets of encode's quality_map / roi, or None."""
    if quality_map is None and roi is None:
        if roi_strength is not None:
            raise LmcError("roi_strength needs roi")
        return None
    if method != "hyperprior":
        raise LmcError("quality_map / roi need method='hyperprior'")
    if quality_map is not None and roi is not None:
        raise LmcError("give quality_map or roi, not both")
    h, w = arr.shape[:2]
    if quality_map is not None:
        return _quality_map.offsets_from_map(quality_map, h, w)
    if roi_strength is None:
        strength = _quality_map.AUTO_STRENGTH if isinstance(roi, str) else _quality_map.ROI_STRENGTH
    elif isinstance(roi_strength, bool) or not isinstance(roi_strength, (int, float)) or not 0 <= roi_strength <= 198:
        raise LmcError(f"roi_strength must be a number in 0..198, not {roi_strength!r}")
    else:
        strength = float(roi_strength)
    if isinstance(roi, str):
        if roi != "auto":
            raise LmcError(f"roi must be a mask array or 'auto', not {roi!r}")
        return _quality_map.offsets_auto(arr, strength)
    if hasattr(roi, "mode") and hasattr(roi, "convert"):  # a PIL image
        roi = np.asarray(roi.convert("L"))
    return _quality_map.offsets_from_roi(roi, h, w, strength)


def decode(data: Union[bytes, bytearray, memoryview], *, threads: Optional[int] = None,
           progress: Optional[Callable[[int, int], Any]] = None) -> np.ndarray:
    """Decode .lmc bytes to a numpy uint8 array (H, W), (H, W, 3) or (H, W, 4).
    progress(done, total) is called after each strip; a truthy return cancels (LmcError)."""
    buf = _as_bytes(data)
    header = _core.internal.container_header(buf, **_read_limits(pixels=False))
    _check_pixels(header, warn=True)
    if _core.stream_mode(buf)[0]:  # the residual coder needs no weights: any model of the codec decodes it
        model = _model(CODEC_NAMES.get(int(header["codec"]), "hyperprior"))
    else:
        model = _model_for_stream(int(header["codec"]), bytes(header["model_id"]).hex())
    lim = _read_limits()
    return model.decode(buf, _threads(threads), lim["max_pixels"], lim["max_chunk_bytes"], 0, lim["max_dimension"],
                        lim["max_chunks"], progress)


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str
    channels: int
    bit_depth: int
    quality: float
    codec: str
    model_id: str
    flags: int
    strip_rows: int
    version: tuple
    # "lossy", "lossless" or "near-lossless"; max_error: the bound on every
    # sample's error (0 lossless, None lossy)
    coding: str = "lossy"
    max_error: Optional[int] = None
    sections: Dict[str, int] = field(default_factory=dict)
    metadata: Dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> tuple:
        return (self.width, self.height)


def info(data: Union[bytes, bytearray, memoryview], *, sections: bool = True) -> ImageInfo:
    """Read a stream's header (and, with sections=True, its section sizes and
    metadata chunks) without decoding any pixels. Raises LmcError on damage."""
    buf = _as_bytes(data)
    if sections:
        header, chunks = _core.internal.container_read(buf, **_read_limits(pixels=False))
    else:
        header, chunks = _core.internal.container_header(buf, **_read_limits(pixels=False)), []
    _check_pixels(header, warn=False)
    sizes: Dict[str, int] = {}
    meta: Dict[str, bytes] = {}
    for t, c in chunks:
        name = t.decode("ascii") if isinstance(t, bytes) else str(t)
        sizes[name] = sizes.get(name, 0) + len(c)
        if name in ("iccp", "exif", "xmpd"):
            meta[{"iccp": "icc_profile", "exif": "exif", "xmpd": "xmp"}[name]] = bytes(c)
    ch = int(header["channels"])
    residual, bound = _core.stream_mode(buf)
    coding = "lossy" if not residual else "lossless" if bound == 0 else "near-lossless"
    return ImageInfo(coding=coding, max_error=int(bound) if residual else None,width=int(header["width"]), height=int(header["height"]), mode=MODES.get(ch, "?"), channels=ch,
                     bit_depth=int(header["bit_depth"]), quality=float(header["quality"]),
                     codec=CODEC_NAMES.get(int(header["codec"]), str(header["codec"])),
                     model_id=bytes(header["model_id"]).hex(), flags=int(header["flags"]),
                     strip_rows=int(header["tile_height"]), version=tuple(header["version"]), sections=sizes,
                     metadata=meta)


def check(data: Any) -> bool:
    """True if data starts with the .lmc signature (cheap sniffing; no validation)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return False
    return bool(_core.internal.container_sniff(bytes(data[:16])))


def set_force_scalar(force: bool = True) -> str:
    """Force the portable scalar kernels (or allow SIMD again). Returns the active kernel path."""
    return _core.set_force_scalar(bool(force))


def kernel_path() -> str:
    """The kernel path the codec runs on now: "avx512", "avx2" or "scalar"."""
    return _core.kernel_path()


def kernel_paths() -> List[str]:
    """The kernel paths this build and CPU can run, slowest first (always
    starts with "scalar")."""
    return list(_core.kernel_paths())


def set_kernels(name: str = "auto") -> str:
    """Cap the kernel path, process-wide: "auto" (the fastest this CPU runs),
    "scalar", "avx2" or "avx512" (the best available path not above the one
    named). Every path produces the same streams and pixels, bit for bit: this
    changes speed only. LMCODEC_KERNELS=<name> does the same at start-up.
    Returns the path now in use; an unknown name raises LmcError."""
    if not isinstance(name, str):
        raise _core.LmcError(f"kernel path must be a str, not {type(name).__name__}")
    return _core.set_kernels(name)


def model_info(method: str = "hyperprior") -> Dict[str, Any]:
    """Parameters, size and id of the model that encodes with `method`, and
    the ids of the earlier models whose streams also decode ("archived")."""
    d = dict(_model(method).info())
    d["archived"] = archived_models(method)
    return d


def default_threads() -> int:
    return os.cpu_count() or 1
