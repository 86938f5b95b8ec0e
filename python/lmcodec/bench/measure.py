"""Running the benchmark: encode, decode and measure every (codec, quality,
image) job, then average the rows into one rate-distortion point per
(codec, quality).  The metrics themselves come from :mod:`lmcodec.metrics`.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._compat import metrics as _metrics
from .bd import _finite, bd_tables, load_reference
from .codecs import (CODECS, Codec, CodecUnavailable, _lmcodec_module, _parse_codecs,
                     _pil_versions, _resolve_qualities)
from .images import load_images
from .report import _jsonable

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

