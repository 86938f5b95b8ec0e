"""Rate-distortion benchmark: lmcodec against the classical image codecs.

Function API::

    from lmcodec import bench
    images = bench.load_images("/path/to/kodak")          # [(name, HxWx3 uint8)]
    res = bench.run_bench(images, ["jpeg", "webp", "avif", "lmc"])
    bench.write_report(res, "report.md")
    bench.write_json(res, "rd.json")
    bench.plot_rd(res, "rd.png", reference="kodak_published_rd.json")

Command line (the ``lmcodec bench`` sub-command delegates to :func:`main_bench`)::

    lmcodec bench [DIR] [--codecs jpeg,webp,avif,jxl,jpeg2000,pca,lmc]
                  [--qualities Q,Q,...|CODEC:Q,Q,...] [--plot rd.png]
                  [--report report.md] [--json out.json]
                  [--reference published_rd.json] [--limit N] [-j THREADS]

Only numpy and Pillow are required.  matplotlib (plots), tqdm (progress bar)
and imagecodecs (JPEG XL) are optional and imported when needed.  A codec
whose library is missing, or that raises while probed, is reported and
skipped; the other codecs still run.

Measurement (per codec, quality and image): the encoder output is the real
file (``bpp = 8 * len(bytes) / (width * height)``), decoded back to RGB and
compared with the original: MSE, MAE, RGB PSNR and MS-SSIM (see
:mod:`lmcodec.metrics`).  Per (codec, quality) point: the *mean* over images
of bpp, compression ratio (24 / bpp on RGB), PSNR, MS-SSIM, MSE and MAE, and
the *median* encode / decode wall time in milliseconds.  BD-rates use the
mean curves (PCHIP Bjøntegaard, see :func:`lmcodec.metrics.bd_rate`); the
MS-SSIM BD-rate is computed on MS-SSIM in dB (``-10 log10(1 - MS-SSIM)``).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

try:  # normal case: part of the lmcodec package
    from . import metrics as _metrics
except ImportError:  # loaded as a stand-alone file (e.g. without lmcodec._core)
    import importlib.util as _ilu

    _spec = _ilu.spec_from_file_location("_lmcodec_bench_metrics",
                                         Path(__file__).with_name("metrics.py"))
    _metrics = _ilu.module_from_spec(_spec)
    _spec.loader.exec_module(_metrics)  # type: ignore[union-attr]

__all__ = [
    "CODECS",
    "DEFAULT_QUALITIES",
    "ANCHORS",
    "Codec",
    "load_images",
    "default_image_dir",
    "run_bench",
    "bd_tables",
    "write_json",
    "write_report",
    "report_markdown",
    "plot_rd",
    "load_reference",
    "main_bench",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".ppm", ".pnm", ".pgm")

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
# images


def default_image_dir() -> Path:
    """The packaged sample image (may not exist)."""
    return Path(__file__).resolve().parent / "data" / "sample.png"


def _load_rgb(path: Path) -> np.ndarray:
    Image, _ = _pil()
    with Image.open(path) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            scale = 65535.0 if arr.max() > 255 else 255.0
            arr = np.clip(np.round(arr / scale * 255.0), 0, 255).astype(np.uint8)
            return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2))
        if im.mode != "RGB":
            if "A" in im.mode or im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA").convert("RGB")
            else:
                im = im.convert("RGB")
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def load_images(path: Union[str, Path, None] = None, limit: Optional[int] = None
                ) -> List[Tuple[str, np.ndarray]]:
    """Every PNG/JPEG/WebP/PPM image in a directory (sorted), or one file, as RGB.

    ``None`` loads the packaged sample image.  Raises FileNotFoundError with
    a helpful message when there is nothing to load.
    """
    if path is None:
        p = default_image_dir()
        if not p.is_file():
            raise FileNotFoundError(
                f"no image directory given and the packaged sample image {p} does not exist; "
                "pass a directory of PNG/JPEG/WebP/PPM images (e.g. the Kodak set)")
    else:
        p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir()
                       if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"no PNG/JPEG/WebP/PPM images in {p}")
    elif p.is_file():
        files = [p]
    else:
        raise FileNotFoundError(f"{p} is neither an image file nor a directory")
    if limit is not None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        files = files[:limit]
    return [(f.name, _load_rgb(f)) for f in files]


# --------------------------------------------------------------------------
# progress


class _Progress:
    def __init__(self, total: int, enabled: bool, desc: str = "bench"):
        self.total = total
        self.n = 0
        self.enabled = enabled and total > 0
        self._bar = None
        self._lock = threading.Lock()
        self._last = -1
        self._t0 = time.perf_counter()
        if self.enabled:
            try:
                from tqdm import tqdm  # optional

                self._bar = tqdm(total=total, desc=desc, unit="img", file=sys.stderr,
                                 dynamic_ncols=True)
            except ImportError:
                self._bar = None
                print(f"{desc}: {total} encode/decode jobs (pip install tqdm for a progress bar)",
                      file=sys.stderr)

    def update(self, label: str = "") -> None:
        if not self.enabled:
            return
        with self._lock:
            self.n += 1
            if self._bar is not None:
                self._bar.set_postfix_str(label, refresh=False)
                self._bar.update(1)
                return
            pct = int(100 * self.n / self.total)
            if pct // 5 != self._last // 5 or self.n == self.total:
                self._last = pct
                el = time.perf_counter() - self._t0
                print(f"  [{self.n}/{self.total}] {pct:3d}%  {el:6.1f}s  {label}",
                      file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# --------------------------------------------------------------------------
# running


def _finite(x: float) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _reference(rgb: np.ndarray):
    """MS-SSIM statistics of an original (None if it is below one 11x11 window)."""
    try:
        return _metrics.MsSsimReference(rgb, small="reduce")
    except ValueError:
        return None


def _measure(codec: Codec, name: str, rgb: np.ndarray, q: float, codec_threads: Optional[int],
             repeat: int, ref=None) -> Dict[str, Any]:
    enc_t: List[float] = []
    dec_t: List[float] = []
    data = b""
    out = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        data = codec.encode(rgb, q, codec_threads)
        t1 = time.perf_counter()
        out = codec.decode(data, codec_threads)
        t2 = time.perf_counter()
        enc_t.append((t1 - t0) * 1e3)
        dec_t.append((t2 - t1) * 1e3)
    out = np.asarray(out)
    if out.shape != rgb.shape:
        raise ValueError(f"decoded shape {out.shape} != original {rgb.shape}")
    if out.dtype != np.uint8:
        out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    h, w = rgb.shape[:2]
    nbytes = len(data)
    if ref is None:
        ref = _reference(rgb)
    return {
        "codec": codec.name, "quality": q, "image": name, "width": w, "height": h,
        "bytes": nbytes, "bpp": nbytes * 8.0 / (h * w),
        "ratio": rgb.size / nbytes if nbytes else math.inf,
        "psnr": _metrics.psnr(rgb, out),
        "msssim": ref.ms_ssim(out) if ref is not None else math.nan,
        "msssim_scales": ref.scales if ref is not None else 0,
        "mse": _metrics.mse(rgb, out), "mae": _metrics.mae(rgb, out),
        "encode_ms": min(enc_t), "decode_ms": min(dec_t),
    }


def _mean(vals: Sequence[float]) -> float:
    vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return math.nan
    if any(math.isinf(v) for v in vals):
        return math.inf
    return float(sum(vals) / len(vals))


def _aggregate(rows: List[Dict[str, Any]], codec: str, qualities: Sequence[float],
               n_images: int) -> List[Dict[str, Any]]:
    pts = []
    for q in qualities:
        rs = [r for r in rows if r["codec"] == codec and r["quality"] == q]
        if not rs:
            continue
        ms = _mean([r["msssim"] for r in rs])
        pts.append({
            "quality": q,
            "n_images": len(rs),
            "complete": len(rs) == n_images,
            "bpp": _mean([r["bpp"] for r in rs]),
            "ratio": _mean([r["ratio"] for r in rs]),
            "psnr": _mean([r["psnr"] for r in rs]),
            "msssim": ms,
            "msssim_db": _mean([_metrics.msssim_db(r["msssim"]) for r in rs
                                if _finite(r["msssim"])]),
            "mse": _mean([r["mse"] for r in rs]),
            "mae": _mean([r["mae"] for r in rs]),
            "encode_ms": float(statistics.median(r["encode_ms"] for r in rs)),
            "decode_ms": float(statistics.median(r["decode_ms"] for r in rs)),
        })
    pts.sort(key=lambda p: p["bpp"])
    return pts


def _library_versions() -> Dict[str, str]:
    out: Dict[str, str] = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        out.update(_pil_versions("jpg", "libjpeg_turbo", "webp", "avif", "jpg_2000", "zlib"))
    except ImportError:  # pragma: no cover
        pass
    try:
        import imagecodecs

        out["imagecodecs"] = str(imagecodecs.__version__)
        try:
            out["libjxl"] = str(imagecodecs.jpegxl_version()).replace("libjxl ", "")
        except Exception:
            pass
    except ImportError:
        out["imagecodecs"] = "not installed"
    return out


def _model_info(codecs: Iterable[str]) -> Dict[str, Any]:
    """``lmcodec.model_info()`` for the lmcodec methods benchmarked (guarded)."""
    out: Dict[str, Any] = {}
    wanted = [c for c in codecs if c in ("lmc", "pca")]
    if not wanted:
        return out
    try:
        mod = _lmcodec_module()
    except CodecUnavailable as e:
        return {c: {"error": str(e)} for c in wanted}
    fn = getattr(mod, "model_info", None)
    if fn is None:
        return {c: {"error": "lmcodec.model_info() is not available"} for c in wanted}
    for c in wanted:
        try:
            info = dict(fn() if c == "lmc" else fn("pca"))
            weights = (Path(getattr(mod, "__file__", "")).parent / "models"
                       / ("hyperprior.lmw" if c == "lmc" else "pca.lmw"))
            if "size_bytes" not in info and weights.is_file():
                info["size_bytes"] = weights.stat().st_size
                info["weights_file"] = weights.name
            out[c] = _jsonable(info)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            out[c] = {"error": f"{type(e).__name__}: {e}"}
    return out


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


def run_bench(images: Union[Sequence[Tuple[str, np.ndarray]], str, Path, None],
              codecs: Union[str, Sequence[str], None] = None,
              qualities: Union[None, Sequence[float], Dict[str, Sequence[float]]] = None,
              threads: Optional[int] = None, progress: bool = True, *,
              codec_threads: Optional[int] = None, repeat: int = 1,
              reference: Union[str, Path, Dict[str, Any], None] = None) -> Dict[str, Any]:
    """Run the benchmark and return a JSON-able result dict.

    ``images``: ``[(name, HxWx3 uint8), ...]`` or a directory/file path
    (``None`` = packaged sample).  ``codecs``: names or a comma list.
    ``qualities``: one list for every codec, or ``{codec: [...]}``; defaults
    are :data:`DEFAULT_QUALITIES`.  ``threads``: worker threads running
    (image, quality) jobs concurrently (default 1, which keeps timings
    honest); ``codec_threads``: threads inside the AVIF/JXL/lmcodec encoders
    (default: each library's default).  ``repeat``: timing repetitions (the
    fastest is kept).  ``reference``: published curves (path or dict) to add
    to the BD-rate tables.

    Result keys: ``images``, ``codecs`` (status/settings/versions per codec),
    ``points`` (codec -> list of RD points sorted by bpp), ``rows`` (one per
    image and quality), ``bd`` (see :func:`bd_tables`), ``errors``,
    ``libraries``, ``model_info``, ``settings``, ``elapsed_s``.
    """
    t_start = time.perf_counter()
    if images is None or isinstance(images, (str, Path)):
        images = load_images(images)
    images = [(str(n), np.ascontiguousarray(np.asarray(a))) for n, a in images]
    if not images:
        raise ValueError("no images to benchmark")
    for n, a in images:
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ValueError(f"image {n}: expected H x W x 3 uint8, got {a.shape} {a.dtype}")
    names = _parse_codecs(codecs)
    grid = _resolve_qualities(names, qualities)
    threads = max(1, int(threads or 1))

    codec_info: Dict[str, Dict[str, Any]] = {}
    errors: List[Dict[str, Any]] = []
    active: List[str] = []
    probe_ref = _reference(images[0][1])
    for n in names:
        c = CODECS[n]
        info: Dict[str, Any] = {"label": c.label, "settings": c.settings,
                                "quality_name": c.quality_name, "qualities": grid[n]}
        try:
            info["versions"] = c.setup()
            # probe: one encode/decode of the first image at a middle quality
            qs = grid[n]
            _measure(c, images[0][0], images[0][1], qs[len(qs) // 2], codec_threads, 1, probe_ref)
            info["status"] = "ok"
            active.append(n)
        except CodecUnavailable as e:
            info["status"] = "skipped"
            info["note"] = str(e)
        except Exception as e:  # noqa: BLE001 - a failing codec is reported, not fatal
            info["status"] = "failed"
            info["note"] = f"{type(e).__name__}: {e}"
        if info["status"] != "ok" and progress:
            print(f"bench: {n} {info['status']}: {info['note']}", file=sys.stderr)
        codec_info[n] = info

    # image-major order: the MS-SSIM statistics of one original are computed
    # once and shared by all its codec/quality jobs.
    jobs = [(n, q, i) for i in range(len(images)) for n in active for q in grid[n]]
    bar = _Progress(len(jobs), progress)
    order = {(n, q, i): k for k, (n, q, i) in
             enumerate((n, q, i) for n in active for q in grid[n] for i in range(len(images)))}
    keyed: List[Tuple[int, Dict[str, Any]]] = []

    def record(job, row=None, exc=None):
        n, q, i = job
        name = images[i][0]
        if exc is None:
            keyed.append((order[job], row))
        else:
            errors.append({"codec": n, "quality": q, "image": name,
                           "error": f"{type(exc).__name__}: {exc}"})
        bar.update(f"{name} {n} q={q}")

    try:
        ex = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
        try:
            for i, (name, img) in enumerate(images):
                ref = _reference(img)
                mine = [j for j in jobs if j[2] == i]
                if ex is None:
                    for job in mine:
                        try:
                            row = _measure(CODECS[job[0]], name, img, job[1], codec_threads,
                                           repeat, ref)
                        except Exception as e:  # noqa: BLE001 - reported per job
                            record(job, exc=e)
                        else:
                            record(job, row)
                else:
                    futs = {ex.submit(_measure, CODECS[j[0]], name, img, j[1], codec_threads,
                                      repeat, ref): j for j in mine}
                    for f in as_completed(futs):
                        e = f.exception()
                        record(futs[f], None if e else f.result(), e)
        finally:
            if ex is not None:
                ex.shutdown()
    finally:
        bar.close()

    keyed.sort(key=lambda kr: kr[0])  # codec, quality, image order
    rows = [r for _, r in keyed]
    points = {n: _aggregate(rows, n, grid[n], len(images)) for n in active}
    for n in active:
        bad = [e for e in errors if e["codec"] == n]
        if bad:
            codec_info[n]["note"] = f"{len(bad)} job(s) failed, first: {bad[0]['error']}"
            if not points[n]:
                codec_info[n]["status"] = "failed"

    result: Dict[str, Any] = {
        "format": "lmcodec-bench/1",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count()},
        "settings": {"threads": threads, "codec_threads": codec_threads, "repeat": repeat,
                     "metrics": "RGB PSNR over the whole image; MS-SSIM 5 scales, mean of "
                                "per-channel values; BD: PCHIP Bjøntegaard"},
        "libraries": _library_versions(),
        "images": [{"name": n, "width": int(a.shape[1]), "height": int(a.shape[0])}
                   for n, a in images],
        "codecs": codec_info,
        "points": points,
        "rows": rows,
        "errors": errors,
        "model_info": _model_info(names),
    }
    ref = None
    if reference is not None:
        ref = reference if isinstance(reference, dict) else load_reference(reference)
        result["reference"] = ref
    result["bd"] = bd_tables(points, reference=ref)
    result["elapsed_s"] = time.perf_counter() - t_start
    return result


# --------------------------------------------------------------------------
# BD tables


def _curve(points: Sequence[Dict[str, Any]], key: str) -> Tuple[List[float], List[float]]:
    r, d = [], []
    for p in points:
        b = p.get("bpp")
        v = p.get(key)
        if key == "msssim_db" and v is None and p.get("msssim") is not None:
            v = _metrics.msssim_db(p["msssim"])
        if _finite(b) and _finite(v) and b > 0:
            r.append(float(b))
            d.append(float(v))
    return r, d


def _reference_points(ref: Dict[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    out = {}
    for c in ref.get("curves", []):
        bpp = c.get("bpp") or []
        pts = []
        for i, b in enumerate(bpp):
            p = {"bpp": b, "psnr": (c.get("psnr") or [None] * len(bpp))[i]}
            ms = c.get("msssim")
            if ms and i < len(ms) and ms[i] is not None:
                p["msssim"] = ms[i]
                p["msssim_db"] = _metrics.msssim_db(ms[i])
            pts.append(p)
        out[str(c.get("name", f"curve {len(out)}"))] = pts
    return out


def bd_tables(points: Dict[str, Sequence[Dict[str, Any]]],
              anchors: Sequence[str] = ANCHORS,
              reference: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """BD-rate (%) and BD-PSNR (dB) of every curve against each anchor present.

    Returns ``{"rate_psnr": {anchor: {codec: %}}, "rate_msssim": ...,
    "psnr": {anchor: {codec: dB}}}``; ``nan`` (``null`` in JSON) where the
    curves do not overlap.  With ``reference`` (published curves), those
    curves are added as rows (``"published"`` sub-tables) and measured codecs
    are also compared against each published curve (``"vs_published"``).
    """
    anchors = [a for a in anchors if points.get(a)]
    tables: Dict[str, Any] = {"anchors": anchors, "rate_psnr": {}, "rate_msssim": {}, "psnr": {}}
    for a in anchors:
        rp, rm, dp = {}, {}, {}
        ra, da = _curve(points[a], "psnr")
        ram, dam = _curve(points[a], "msssim_db")
        for c, pts in points.items():
            r, d = _curve(pts, "psnr")
            rm_, dm_ = _curve(pts, "msssim_db")
            rp[c] = _metrics.bd_rate(ra, da, r, d)
            rm[c] = _metrics.bd_rate(ram, dam, rm_, dm_)
            dp[c] = _metrics.bd_psnr(ra, da, r, d)
        tables["rate_psnr"][a], tables["rate_msssim"][a], tables["psnr"][a] = rp, rm, dp
    if reference:
        refpts = _reference_points(reference)
        pub: Dict[str, Any] = {"rate_psnr": {}, "rate_msssim": {}}
        for a in anchors:
            ra, da = _curve(points[a], "psnr")
            ram, dam = _curve(points[a], "msssim_db")
            pub["rate_psnr"][a] = {k: _metrics.bd_rate(ra, da, *_curve(v, "psnr"))
                                   for k, v in refpts.items()}
            pub["rate_msssim"][a] = {k: _metrics.bd_rate(ram, dam, *_curve(v, "msssim_db"))
                                     for k, v in refpts.items()}
        tables["published"] = pub
        vs: Dict[str, Dict[str, float]] = {}
        for k, v in refpts.items():
            rk, dk = _curve(v, "psnr")
            vs[k] = {c: _metrics.bd_rate(rk, dk, *_curve(pts, "psnr")) for c, pts in points.items()}
        tables["vs_published"] = vs
    return tables


# --------------------------------------------------------------------------
# output


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)


def write_json(result: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Write the result as strict JSON (nan/inf become null)."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(_jsonable(result), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return p


def load_reference(path: Union[str, Path]) -> Dict[str, Any]:
    """Read published RD curves: ``{"curves": [{"name", "bpp", "psnr", "msssim"?}]}``."""
    with open(path, encoding="utf-8") as f:
        ref = json.load(f)
    if not isinstance(ref, dict) or not isinstance(ref.get("curves"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'curves' list")
    for c in ref["curves"]:
        if not isinstance(c, dict) or "bpp" not in c or "psnr" not in c:
            raise ValueError(f"{path}: every curve needs 'bpp' and 'psnr' lists")
        if len(c["bpp"]) != len(c["psnr"]):
            raise ValueError(f"{path}: curve {c.get('name')!r} has mismatched bpp/psnr lengths")
    return ref


def _f(x: Any, nd: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{nd}f}"


def _bd_md(table: Dict[str, Dict[str, float]], codecs: Sequence[str], unit: str = "%") -> List[str]:
    anchors = list(table)
    lines = ["| codec | " + " | ".join(f"vs {a}" for a in anchors) + " |",
             "|---|" + "---:|" * len(anchors)]
    for c in codecs:
        cells = []
        for a in anchors:
            v = table[a].get(c)
            if c == a:
                cells.append("0 (anchor)")
            elif v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("n/a")
            else:
                cells.append(f"{v:+.1f}{unit}" if unit == "%" else f"{v:+.2f}{unit}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def report_markdown(result: Dict[str, Any], title: str = "lmcodec rate–distortion benchmark") -> str:
    """The Markdown report of a :func:`run_bench` result."""
    L: List[str] = [f"# {title}", ""]
    imgs = result.get("images", [])
    npix = sum(i["width"] * i["height"] for i in imgs)
    sizes = sorted({f"{i['width']}x{i['height']}" for i in imgs})
    st = result.get("settings", {})
    L += [f"- Date: {result.get('created', '?')}; run time {_f(result.get('elapsed_s'), 1)} s",
          f"- Machine: {result.get('machine', {}).get('platform', '?')}, "
          f"{result.get('machine', {}).get('cpu_count', '?')} logical CPUs",
          f"- Images: {len(imgs)} ({', '.join(sizes)}; {npix / 1e6:.2f} Mpixel in total)",
          f"- Worker threads: {st.get('threads', 1)}; threads inside codecs: "
          f"{st.get('codec_threads') or 'library default'}; timing repetitions: "
          f"{st.get('repeat', 1)} (fastest kept)",
          "- Libraries: " + ", ".join(f"{k} {v}" for k, v in result.get("libraries", {}).items()),
          ""]
    L += ["## Method", "",
          "- bpp = 8 · file bytes / pixels (real encoder output incl. container); "
          "ratio = 24 / bpp; values are means over the images, encode/decode times are "
          "medians (ms, wall clock, in-memory, including Pillow/numpy conversion).",
          "- PSNR: RGB, 8-bit, `10·log10(255²/MSE)` with the MSE over all pixels and channels "
          "of an image, averaged over images. MS-SSIM: Wang et al. 2003, 5 scales, 11×11 "
          "Gaussian σ=1.5, computed per RGB channel and averaged (CompressAI convention); "
          "MS-SSIM dB = −10·log10(1−MS-SSIM).",
          "- BD-rate: Bjøntegaard, log-rate interpolated with PCHIP as a function of "
          "quality over the overlapping quality range; negative = fewer bits than the "
          "anchor. The MS-SSIM BD-rate uses MS-SSIM in dB.", ""]

    L += ["## Codecs", "", "| codec | status | versions | settings | qualities |",
          "|---|---|---|---|---|"]
    for n, c in result.get("codecs", {}).items():
        vers = ", ".join(f"{k} {v}" for k, v in c.get("versions", {}).items()) or "–"
        status = c.get("status", "?")
        if c.get("note"):
            status += f" ({c['note']})"
        qs = ", ".join(str(q) for q in c.get("qualities", []))
        L.append(f"| {n} | {status} | {vers} | {c.get('settings', '')} | "
                 f"{c.get('quality_name', 'quality')}: {qs} |")
    L.append("")

    points = result.get("points", {})
    codecs = [n for n in points if points[n]]
    bd = result.get("bd", {})
    if bd.get("anchors"):
        L += ["## BD-rate (PSNR)", "", "Negative: the codec needs that many percent fewer "
              "bits than the anchor at equal PSNR.", ""]
        L += _bd_md(bd["rate_psnr"], codecs) + [""]
        L += ["## BD-rate (MS-SSIM)", ""]
        L += _bd_md(bd["rate_msssim"], codecs) + [""]
        L += ["## BD-PSNR", "", "Positive: the codec gains that many dB over the anchor at "
              "equal rate.", ""]
        L += _bd_md(bd["psnr"], codecs, unit=" dB") + [""]
    else:
        L += ["## BD-rate", "", "No anchor codec (jpeg, webp, avif) produced a curve; "
              "no BD-rate tables.", ""]
    if bd.get("published"):
        pub = bd["published"]
        names = list(next(iter(pub["rate_psnr"].values())).keys()) if pub["rate_psnr"] else []
        if names:
            L += ["## Published curves (BD-rate, PSNR) against the measured anchors", "",
                  "Only meaningful when the images are the 24 Kodak images.", ""]
            L += _bd_md(pub["rate_psnr"], names) + [""]
    if bd.get("vs_published"):
        vs = bd["vs_published"]
        L += ["## Measured codecs against published curves (BD-rate, PSNR)", "",
              "Cell: BD-rate of the column's codec against the row's published curve "
              "(negative = the measured codec needs fewer bits). Kodak only.", "",
              "| published curve | " + " | ".join(codecs) + " |",
              "|---|" + "---:|" * len(codecs)]
        for k, row in vs.items():
            cells = []
            for c in codecs:
                v = row.get(c)
                cells.append("n/a" if v is None or math.isnan(v) else f"{v:+.1f}%")
            L.append(f"| {k} | " + " | ".join(cells) + " |")
        L.append("")

    L += ["## Speed", "", "Median over all images and qualities of each codec.", "",
          "| codec | encode ms | decode ms | encode MP/s | decode MP/s |",
          "|---|---:|---:|---:|---:|"]
    mp = (npix / len(imgs) / 1e6) if imgs else math.nan
    for n in codecs:
        rs = [r for r in result.get("rows", []) if r["codec"] == n]
        if not rs:
            continue
        e = statistics.median(r["encode_ms"] for r in rs)
        d = statistics.median(r["decode_ms"] for r in rs)
        L.append(f"| {n} | {_f(e, 1)} | {_f(d, 1)} | {_f(mp / e * 1e3 if e else math.nan, 2)} | "
                 f"{_f(mp / d * 1e3 if d else math.nan, 2)} |")
    L.append("")

    L += ["## Rate–distortion points", ""]
    for n in codecs:
        qn = result["codecs"].get(n, {}).get("quality_name", "quality")
        L += [f"### {n}", "",
              f"| {qn} | bpp | ratio | PSNR dB | MS-SSIM | MS-SSIM dB | MSE | MAE | enc ms | dec ms |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for p in points[n]:
            flag = "" if p.get("complete", True) else f" ({p['n_images']} img)"
            L.append(f"| {p['quality']}{flag} | {_f(p['bpp'], 4)} | {_f(p['ratio'], 1)} | "
                     f"{_f(p['psnr'])} | {_f(p['msssim'], 4)} | {_f(p['msssim_db'])} | "
                     f"{_f(p['mse'])} | {_f(p['mae'])} | {_f(p['encode_ms'], 1)} | "
                     f"{_f(p['decode_ms'], 1)} |")
        L.append("")

    mi = result.get("model_info") or {}
    if mi:
        L += ["## Model", ""]
        for n, info in mi.items():
            if "error" in info:
                L.append(f"- {n}: model_info unavailable ({info['error']})")
                continue
            params = info.get("parameters", info.get("params", info.get("num_parameters")))
            size = info.get("size_bytes", info.get("bytes", info.get("weights_bytes")))
            head = f"- {n}:"
            if params is not None:
                head += f" {params:,} parameters" if isinstance(params, int) else f" parameters {params}"
            if size is not None:
                head += (f", {size / 1e6:.2f} MB of weights" if isinstance(size, (int, float))
                         else f", size {size}")
            L.append(head)
            for k, v in info.items():
                L.append(f"  - {k}: {v}")
        L.append("")

    errs = result.get("errors", [])
    skipped = {n: c for n, c in result.get("codecs", {}).items() if c.get("status") != "ok"}
    if errs or skipped:
        L += ["## Problems", ""]
        for n, c in skipped.items():
            L.append(f"- {n}: {c.get('status')}: {c.get('note', '')}")
        for e in errs[:50]:
            L.append(f"- {e['codec']} q={e['quality']} {e['image']}: {e['error']}")
        if len(errs) > 50:
            L.append(f"- … {len(errs) - 50} more errors (see the JSON output)")
        L.append("")
    return "\n".join(L)


def write_report(result: Dict[str, Any], path: Union[str, Path], plot: Optional[str] = None) -> Path:
    """Write the Markdown report (optionally linking a plot image)."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    text = report_markdown(result)
    if plot:
        try:
            rel = os.path.relpath(plot, p.parent)
        except ValueError:
            rel = str(plot)
        text = text.replace("\n## Method", f"\n![rate–distortion curves]({rel})\n\n## Method", 1)
    p.write_text(text + "\n", encoding="utf-8")
    return p


def plot_rd(result: Dict[str, Any], path: Union[str, Path],
            reference: Union[str, Path, Dict[str, Any], None] = None,
            title: Optional[str] = None) -> Path:
    """PSNR-vs-bpp and MS-SSIM(dB)-vs-bpp side by side, published curves dashed.

    Needs matplotlib (``pip install matplotlib``); raises ImportError with
    that hint otherwise.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from e
    if reference is None:
        reference = result.get("reference")
    ref = (reference if isinstance(reference, dict) or reference is None
           else load_reference(reference))
    import matplotlib

    fig = Figure(figsize=(13, 6.4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    solid = matplotlib.colormaps["tab10"]
    dashed = matplotlib.colormaps["Dark2"]
    maxb = 0.0
    ys: Dict[int, List[float]] = {0: [], 1: []}
    handles = []
    measured = [(n, pts) for n, pts in result.get("points", {}).items() if pts]
    for i, (n, pts) in enumerate(measured):
        r, d = _curve(pts, "psnr")
        if not r:
            continue
        col = solid(i % 10)
        (line,) = ax1.plot(r, d, "o-", ms=3.5, lw=1.6, color=col, label=n)
        handles.append(line)
        maxb = max(maxb, max(r))
        ys[0] += d
        r2, d2 = _curve(pts, "msssim_db")
        if r2:
            ax2.plot(r2, d2, "o-", ms=3.5, lw=1.6, color=col, label=n)
            ys[1] += d2
    xmax = min(maxb * 1.05, 3.0) if maxb > 0 else 2.0
    if ref:
        for i, (name, pts) in enumerate(_reference_points(ref).items()):
            r, d = _curve(pts, "psnr")
            if not r:
                continue
            col = dashed(i % 8)
            style = "--" if i < 8 else "-."
            (line,) = ax1.plot(r, d, style, lw=1.1, color=col, label=name)
            handles.append(line)
            ys[0] += [v for b, v in zip(r, d) if b <= xmax]
            r2, d2 = _curve(pts, "msssim_db")
            if r2:
                ax2.plot(r2, d2, style, lw=1.1, color=col, label=name)
                ys[1] += [v for b, v in zip(r2, d2) if b <= xmax]
    for k, (ax, yl) in enumerate(((ax1, "RGB PSNR (dB)"),
                                  (ax2, "MS-SSIM (dB) = −10·log10(1 − MS-SSIM)"))):
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(yl)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, xmax)
        if ys[k]:
            lo, hi = min(ys[k]), max(ys[k])
            pad = 0.03 * (hi - lo) + 0.1
            ax.set_ylim(lo - pad, hi + pad)
    ax1.set_title("PSNR vs rate")
    ax2.set_title("MS-SSIM vs rate")
    if handles:
        fig.legend(handles=handles, loc="lower center", fontsize=8, frameon=False,
                   ncol=min(4, len(handles)))
    n_img = len(result.get("images", []))
    fig.suptitle(title or f"lmcodec rate–distortion ({n_img} image{'s' if n_img != 1 else ''})")
    rows_legend = (len(handles) + 3) // 4
    fig.tight_layout(rect=(0, min(0.4, 0.035 * rows_legend + 0.02), 1, 1))
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120)
    return p


def summary_text(result: Dict[str, Any]) -> str:
    """A short plain-text summary (codec status and BD-rates) for the terminal."""
    L = []
    for n, c in result.get("codecs", {}).items():
        pts = result.get("points", {}).get(n, [])
        rng = (f"{pts[0]['bpp']:.3f}–{pts[-1]['bpp']:.3f} bpp, "
               f"{_f(pts[0]['psnr'])}–{_f(pts[-1]['psnr'])} dB") if pts else ""
        L.append(f"{n:9s} {c.get('status', '?'):8s} {rng} {c.get('note', '')}".rstrip())
    bd = result.get("bd", {})
    for key, label in (("rate_psnr", "BD-rate (PSNR)"), ("rate_msssim", "BD-rate (MS-SSIM dB)")):
        tab = bd.get(key) or {}
        if not tab:
            continue
        L.append(f"\n{label}:")
        L.append("          " + "".join(f"{'vs ' + a:>12s}" for a in tab))
        for c in result.get("points", {}):
            if not result["points"][c]:
                continue
            cells = []
            for a in tab:
                v = tab[a].get(c)
                cells.append(f"{'n/a' if v is None or math.isnan(v) else f'{v:+.1f}%':>12s}")
            L.append(f"{c:10s}" + "".join(cells))
    L.append(f"\n{len(result.get('images', []))} image(s), {result.get('elapsed_s', 0):.1f} s")
    return "\n".join(L)


# --------------------------------------------------------------------------
# command line


def _parse_quality_args(values: Optional[List[str]]):
    if not values:
        return None
    common: Optional[List[float]] = None
    per: Dict[str, List[float]] = {}
    for v in values:
        for part in v.split(";"):
            part = part.strip()
            if not part:
                continue
            if ":" in part or "=" in part:
                k, _, qs = part.replace("=", ":").partition(":")
                per[k.strip()] = [float(x) for x in qs.split(",") if x.strip()]
            else:
                common = [float(x) for x in part.split(",") if x.strip()]
    if per and common is not None:
        raise ValueError("--qualities: give either one list for all codecs or CODEC:LIST entries")
    return per or common


def main_bench(argv: Optional[List[str]] = None) -> int:
    """``lmcodec bench ...``: parse ``argv`` (without the sub-command), run, write outputs."""
    ap = argparse.ArgumentParser(
        prog="lmcodec bench",
        description="Rate-distortion benchmark of lmcodec against JPEG, WebP, AVIF, "
                    "JPEG XL and JPEG 2000.")
    ap.add_argument("dir", nargs="?", default=None,
                    help="directory of PNG/JPEG/WebP/PPM images, or one image "
                         "(default: the packaged sample image)")
    ap.add_argument("--codecs", default=",".join(_DEFAULT_CODECS),
                    help="comma-separated list (default: %(default)s)")
    ap.add_argument("--qualities", action="append", metavar="LIST",
                    help="'Q,Q,...' for every codec or 'CODEC:Q,Q,...' (repeatable, or "
                         "';'-separated); default grids span ~0.1-2 bpp. For jpeg2000 the "
                         "value is the compression ratio")
    ap.add_argument("--plot", metavar="PNG", help="write PSNR/MS-SSIM vs bpp plots (matplotlib)")
    ap.add_argument("--report", metavar="MD", help="write a Markdown report")
    ap.add_argument("--json", metavar="JSON", help="write all results (per-image rows too)")
    ap.add_argument("--reference", metavar="JSON",
                    help="published RD curves ({'curves':[{name,bpp,psnr,msssim}]}) to "
                         "overlay and compare")
    ap.add_argument("--limit", type=int, metavar="N", help="use only the first N images")
    ap.add_argument("-j", "--threads", type=int, default=1, metavar="N",
                    help="worker threads running jobs in parallel (default 1; >1 "
                         "distorts timings)")
    ap.add_argument("--codec-threads", type=int, default=None, metavar="N",
                    help="threads inside AVIF/JXL/lmcodec (default: library default)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="time each encode/decode N times, keep the fastest (default 1)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    args = ap.parse_args(argv)

    try:
        qualities = _parse_quality_args(args.qualities)
        codecs = _parse_codecs(args.codecs)
        if args.limit is not None and args.limit < 1:
            raise ValueError("--limit must be >= 1")
        if args.threads < 1 or args.repeat < 1:
            raise ValueError("-j and --repeat must be >= 1")
        ref = load_reference(args.reference) if args.reference else None
        images = load_images(args.dir, limit=args.limit)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"lmcodec bench: error: {e}", file=sys.stderr)
        return 2

    result = run_bench(images, codecs, qualities, threads=args.threads,
                       progress=not args.quiet, codec_threads=args.codec_threads,
                       repeat=args.repeat, reference=ref)
    rc = 0
    if not any(result["points"].values()):
        print("lmcodec bench: error: no codec produced results", file=sys.stderr)
        rc = 1
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    plot_path = None
    if args.plot:
        try:
            plot_rd(result, args.plot, reference=ref)
            plot_path = args.plot
            print(f"wrote {args.plot}", file=sys.stderr)
        except ImportError as e:
            print(f"lmcodec bench: cannot plot: {e}", file=sys.stderr)
            rc = rc or 1
    if args.report:
        write_report(result, args.report, plot=plot_path)
        print(f"wrote {args.report}", file=sys.stderr)
    print(summary_text(result))
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_bench(sys.argv[1:]))
