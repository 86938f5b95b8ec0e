"""The codecs of the benchmark: one :class:`Codec` adapter per library, and
which codecs and qualities a run uses.

Each adapter wraps a library behind ``encode(rgb, quality, threads) -> bytes``
and ``decode(bytes, threads) -> RGB``: Pillow (JPEG, WebP, AVIF, JPEG 2000),
imagecodecs (JPEG XL) and lmcodec itself (learned, PCA, and the learned codec
without its RDO quantiser).  Libraries are imported when a codec is set up,
so a missing one only skips that codec.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

#: Quality grids chosen to span about 0.1 - 2 bpp on Kodak-like photographs.
DEFAULT_QUALITIES: Dict[str, List[float]] = {
    "jpeg": [5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95],
    "webp": [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
    "avif": [10, 15, 20, 30, 40, 50, 60, 70, 80, 90],
    "jxl": [10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
    # JPEG 2000: the value is the target compression ratio (24 bpp / ratio).
    "jpeg2000": [240, 160, 120, 80, 60, 40, 30, 20, 16, 12],
    "pca": [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    "lmc": [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    "lmc-plain": [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
}

#: Codecs every other codec is compared against in the BD-rate tables.
ANCHORS = ("jpeg", "webp", "avif")

_DEFAULT_CODECS = ("jpeg", "webp", "avif", "jxl", "jpeg2000", "pca", "lmc")


class CodecUnavailable(RuntimeError):
    """The library behind a codec is missing (the codec is skipped)."""


# --------------------------------------------------------------------------
# codecs


@dataclass
class Codec:
    """One codec of the benchmark.

    ``encode(rgb, quality, threads) -> bytes`` and
    ``decode(bytes, threads) -> HxWx3 uint8`` (``threads`` None = library default).
    ``setup()`` raises :class:`CodecUnavailable` when the library is missing
    and returns a dict of library versions otherwise.
    """

    name: str
    label: str
    settings: str
    encode: Callable[[np.ndarray, float, Optional[int]], bytes]
    decode: Callable[[bytes, Optional[int]], np.ndarray]
    setup: Callable[[], Dict[str, str]] = field(default=lambda: {})
    quality_name: str = "quality"


def _pil():
    from PIL import Image, features

    return Image, features


def _pil_versions(*feats: str) -> Dict[str, str]:
    import PIL

    _, features = _pil()
    out = {"Pillow": PIL.__version__}
    for f in feats:
        try:
            v = features.version(f)
        except Exception:  # unknown feature name on this Pillow
            v = None
        if v:
            out[f] = str(v)
    return out


def _pil_encoder(fmt: str, **fixed: Any):
    def encode(rgb: np.ndarray, q: float, _threads: Optional[int] = None) -> bytes:
        Image, _ = _pil()
        buf = io.BytesIO()
        kw = dict(fixed)
        if fmt == "JPEG2000":
            kw["quality_layers"] = [float(q)]
        else:
            kw["quality"] = int(round(q))
        if fmt == "AVIF" and _threads:
            kw["max_threads"] = int(_threads)
        Image.fromarray(rgb, "RGB").save(buf, format=fmt, **kw)
        return buf.getvalue()

    return encode


def _pil_decode(data: bytes, _threads: Optional[int] = None) -> np.ndarray:
    Image, _ = _pil()
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode != "RGB":
            im = im.convert("RGB")
        return np.asarray(im)


def _pil_setup(feature: str, *extra: str) -> Callable[[], Dict[str, str]]:
    def setup() -> Dict[str, str]:
        try:
            _, features = _pil()
        except ImportError as e:  # pragma: no cover - Pillow is a dependency
            raise CodecUnavailable(f"Pillow is not installed ({e})")
        if not features.check(feature):
            raise CodecUnavailable(f"this Pillow build has no {feature} support")
        return _pil_versions(feature, *extra)

    return setup


def _jxl_setup() -> Dict[str, str]:
    try:
        import imagecodecs
    except ImportError:
        raise CodecUnavailable("imagecodecs is not installed (pip install imagecodecs)")
    if not getattr(getattr(imagecodecs, "JPEGXL", None), "available", False):
        raise CodecUnavailable("this imagecodecs build has no JPEG XL codec")
    out = {"imagecodecs": str(imagecodecs.__version__)}
    try:
        out["libjxl"] = str(imagecodecs.jpegxl_version()).replace("libjxl ", "")
    except Exception:
        pass
    return out


def _jxl_encode(rgb: np.ndarray, q: float, _threads: Optional[int] = None) -> bytes:
    import imagecodecs

    kw: Dict[str, Any] = {"level": float(q)}
    if _threads:
        kw["numthreads"] = int(_threads)
    return bytes(imagecodecs.jpegxl_encode(rgb, **kw))


def _jxl_decode(data: bytes, _threads: Optional[int] = None) -> np.ndarray:
    import imagecodecs

    if _threads:
        return np.asarray(imagecodecs.jpegxl_decode(data, numthreads=int(_threads)))
    return np.asarray(imagecodecs.jpegxl_decode(data))


def _lmcodec_module():
    import importlib

    try:
        return importlib.import_module("lmcodec")
    except ImportError as e:
        raise CodecUnavailable(f"the lmcodec package does not import ({e})")


def _lmc_setup(method: Optional[str]) -> Callable[[], Dict[str, str]]:
    def setup() -> Dict[str, str]:
        mod = _lmcodec_module()
        if getattr(mod, "encode", None) is None or getattr(mod, "decode", None) is None:
            raise CodecUnavailable("lmcodec.encode / lmcodec.decode are not available")
        return {"lmcodec": str(getattr(mod, "__version__", "?")),
                "numpy": np.__version__}

    return setup


def _lmc_encoder(method: Optional[str], rdo: bool = True):
    def encode(rgb: np.ndarray, q: float, _threads: Optional[int] = None) -> bytes:
        mod = _lmcodec_module()
        kw: Dict[str, Any] = {"quality": q}
        if method is not None:
            kw["method"] = method
        if not rdo:
            kw["rdo"] = False
        if _threads:
            kw["threads"] = int(_threads)
        return bytes(getattr(mod, "encode")(rgb, **kw))

    return encode


def _lmc_decode(data: bytes, _threads: Optional[int] = None) -> np.ndarray:
    mod = _lmcodec_module()
    kw: Dict[str, Any] = {}
    if _threads:
        kw["threads"] = int(_threads)
    return np.asarray(getattr(mod, "decode")(data, **kw))


CODECS: Dict[str, Codec] = {
    "jpeg": Codec(
        "jpeg", "JPEG (libjpeg-turbo)",
        "Pillow JPEG, 4:2:0 chroma subsampling (subsampling=2), baseline, "
        "standard quant tables, no optimize/progressive (Pillow defaults)",
        _pil_encoder("JPEG", subsampling=2), _pil_decode,
        _pil_setup("jpg", "libjpeg_turbo")),
    "webp": Codec(
        "webp", "WebP (libwebp)",
        "Pillow WebP lossy, method=4 (libwebp/Pillow default), 4:2:0, default preset",
        _pil_encoder("WEBP", lossless=False), _pil_decode, _pil_setup("webp")),
    "avif": Codec(
        "avif", "AVIF (libavif)",
        "Pillow AVIF plugin, speed=6 (default), 4:2:0 (default), full range, "
        "codec=auto; max_threads = Pillow default unless --codec-threads",
        _pil_encoder("AVIF"), _pil_decode, _pil_setup("avif")),
    "jxl": Codec(
        "jxl", "JPEG XL (libjxl)",
        "imagecodecs.jpegxl_encode(level=quality) (libjxl quality -> distance "
        "mapping), default effort 7, lossy, 8-bit RGB",
        _jxl_encode, _jxl_decode, _jxl_setup),
    "jpeg2000": Codec(
        "jpeg2000", "JPEG 2000 (OpenJPEG)",
        "Pillow JPEG2000 (.jp2), quality_mode='rates', one layer with the given "
        "compression ratio (bpp ~ 24/ratio), irreversible 9/7 wavelet, "
        "multi-component (YCbCr) transform mct=1",
        _pil_encoder("JPEG2000", quality_mode="rates", irreversible=True, mct=1),
        _pil_decode, _pil_setup("jpg_2000"), quality_name="ratio"),
    "pca": Codec(
        "pca", "lmcodec PCA baseline",
        "lmcodec.encode(img, quality=q, method='pca') / lmcodec.decode",
        _lmc_encoder("pca"), _lmc_decode, _lmc_setup("pca")),
    "lmc": Codec(
        "lmc", "lmcodec (learned)",
        "lmcodec.encode(img, quality=q) (default method) / lmcodec.decode",
        _lmc_encoder(None), _lmc_decode, _lmc_setup(None)),
    "lmc-plain": Codec(
        "lmc-plain", "lmcodec, round-to-nearest quantiser",
        "lmcodec.encode(img, quality=q, rdo=False) / lmcodec.decode (ablation: "
        "the learned codec without its rate-distortion optimised quantiser)",
        _lmc_encoder(None, rdo=False), _lmc_decode, _lmc_setup(None)),
}


# --------------------------------------------------------------------------
# choosing the codecs and qualities of a run


def _parse_codecs(codecs: Union[str, Sequence[str], None]) -> List[str]:
    if codecs is None:
        return list(_DEFAULT_CODECS)
    if isinstance(codecs, str):
        codecs = [c for c in codecs.split(",")]
    names = []
    for c in codecs:
        c = c.strip().lower()
        if not c:
            continue
        c = {"jpg": "jpeg", "j2k": "jpeg2000", "jp2": "jpeg2000", "jpegxl": "jxl",
             "hyperprior": "lmc"}.get(c, c)
        if c not in CODECS:
            raise ValueError(f"unknown codec {c!r}; choose from {', '.join(CODECS)}")
        if c not in names:
            names.append(c)
    if not names:
        raise ValueError("no codecs given")
    return names


def _resolve_qualities(names: Sequence[str],
                       qualities: Union[None, Sequence[float], Dict[str, Sequence[float]]]
                       ) -> Dict[str, List[float]]:
    out = {n: list(DEFAULT_QUALITIES[n]) for n in names}
    if qualities is None:
        return out
    if isinstance(qualities, dict):
        for k, v in qualities.items():
            k = _parse_codecs([k])[0]
            if k in out:
                out[k] = [float(x) for x in v]
    else:
        qs = [float(x) for x in qualities]
        for n in names:
            out[n] = list(qs)
    for n, qs in out.items():
        if not qs:
            raise ValueError(f"empty quality list for {n}")
        out[n] = [int(q) if float(q).is_integer() else float(q) for q in qs]
    return out

