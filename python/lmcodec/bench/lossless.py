"""Lossless and near-lossless rows of the benchmark (``lmcodec bench --lossless``,
benchmarks/lossless.py): lmcodec ``lossless=True`` and ``max_error=k`` beside
PNG, WebP lossless, JPEG XL lossless and AVIF "lossless" (checked: a codec
whose output is not exact is reported as such, not as lossless)."""

from __future__ import annotations

import io
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np


def _timed(fn: Callable[[], Any], repeat: int) -> Tuple[Any, float]:
    """fn's result and its median wall time in ms over `repeat` runs."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return out, statistics.median(times)


def _pil(fmt: str, **kw) -> Tuple[Callable, Callable]:
    from PIL import Image

    def enc(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format=fmt, **kw)
        return buf.getvalue()

    def dec(d: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(d)) as im:
            return np.asarray(im.convert("RGB"))
    return enc, dec


def lossless_codecs(threads: int = 2) -> Dict[str, Dict[str, Any]]:
    """name -> {label, enc, dec} for every lossless codec available here;
    unavailable ones -> {label, skip: reason}."""
    import lmcodec

    out: Dict[str, Dict[str, Any]] = {
        "lmc": dict(label="lmcodec lossless=True", enc=lambda a: lmcodec.encode(a, lossless=True, threads=threads),
                    dec=lambda d: lmcodec.decode(d, threads=threads)),
    }
    enc, dec = _pil("PNG", optimize=True)
    out["png"] = dict(label="PNG (Pillow, optimize=True)", enc=enc, dec=dec)
    from PIL import features

    if features.check("webp"):
        enc, dec = _pil("WEBP", lossless=True, method=6, quality=100)
        out["webp"] = dict(label=f"WebP lossless (libwebp {features.version('webp')}, method 6, quality 100)",
                           enc=enc, dec=dec)
    else:
        out["webp"] = dict(label="WebP lossless", skip="Pillow has no WebP support")
    try:
        import imagecodecs

        if not imagecodecs.JPEGXL.available:
            raise ImportError("imagecodecs without JPEG XL")
        out["jxl"] = dict(label=f"JPEG XL lossless (imagecodecs {imagecodecs.__version__}, effort 7)",
                          enc=lambda a: imagecodecs.jpegxl_encode(a, lossless=True, effort=7, numthreads=threads),
                          dec=lambda d: imagecodecs.jpegxl_decode(d, numthreads=threads))
    except ImportError as e:
        out["jxl"] = dict(label="JPEG XL lossless", skip=f"imagecodecs not installed ({e}); pip install imagecodecs")
    if features.check("avif"):
        enc, dec = _pil("AVIF", lossless=True, max_threads=threads)
        out["avif"] = dict(label="AVIF lossless=True (Pillow AVIF plugin)", enc=enc, dec=dec)
    else:
        out["avif"] = dict(label="AVIF lossless", skip="Pillow has no AVIF support")
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def run_lossless(images: Sequence[Tuple[str, np.ndarray]], threads: int = 2, repeat: int = 1,
                 ks: Sequence[int] = (1, 2, 4), codecs: Optional[Sequence[str]] = None,
                 progress: bool = True) -> Dict[str, Any]:
    """Per-codec mean bpp, median encode/decode ms and exactness on `images`;
    lmcodec's near-lossless points at each k (bpp, PSNR, max error) and its
    lossy decode time at quality 75 (the speed target's yardstick)."""
    import lmcodec

    table = lossless_codecs(threads)
    names = [n for n in table if codecs is None or n in codecs]
    per: Dict[str, List[Dict[str, float]]] = {n: [] for n in names}
    near: Dict[int, List[Dict[str, float]]] = {k: [] for k in ks}
    lossy_dec: List[float] = []
    for i, (name, a) in enumerate(images):
        px = a.shape[0] * a.shape[1]
        for n in names:
            c = table[n]
            if "skip" in c:
                continue
            d, te = _timed(lambda: c["enc"](a), repeat)
            b, td = _timed(lambda: c["dec"](d), repeat)
            err = int(np.abs(np.asarray(b, dtype=int) - a.astype(int)).max()) if b.shape == a.shape else -1
            per[n].append(dict(bpp=8 * len(d) / px, enc_ms=te, dec_ms=td, max_err=err))
        for k in ks:
            d = lmcodec.encode(a, max_error=k, threads=threads)
            b = lmcodec.decode(d, threads=threads)
            near[k].append(dict(bpp=8 * len(d) / px, psnr=_psnr(a, b),
                                max_err=int(np.abs(b.astype(int) - a.astype(int)).max())))
        d = lmcodec.encode(a, 75, threads=threads)
        lossy_dec.append(_timed(lambda: lmcodec.decode(d, threads=threads), repeat)[1])
        if progress:
            print(f"[{i + 1}/{len(images)}] {name}: " + ", ".join(
                f"{n} {per[n][-1]['bpp']:.3f}" for n in names if per[n]), file=sys.stderr, flush=True)
    rows = {}
    for n in names:
        c = table[n]
        if "skip" in c or not per[n]:
            rows[n] = dict(label=c["label"], skip=c.get("skip", "no images"))
            continue
        rs = per[n]
        rows[n] = dict(label=c["label"], bpp=statistics.fmean(r["bpp"] for r in rs),
                       enc_ms=statistics.median(r["enc_ms"] for r in rs),
                       dec_ms=statistics.median(r["dec_ms"] for r in rs),
                       exact=all(r["max_err"] == 0 for r in rs), max_err=max(r["max_err"] for r in rs))
    near_rows = {k: dict(bpp=statistics.fmean(r["bpp"] for r in v), psnr=statistics.fmean(r["psnr"] for r in v),
                         max_err=max(r["max_err"] for r in v)) for k, v in near.items() if v}
    return dict(n_images=len(images), threads=threads, repeat=repeat, rows=rows, near=near_rows,
                lossy_decode_ms=statistics.median(lossy_dec) if lossy_dec else None)


def lossless_report(res: Dict[str, Any], lossy_points: Optional[List[Dict[str, float]]] = None,
                    plot: Optional[str] = None) -> str:
    """Markdown: the lossless table, the near-lossless points and the speed
    ratios against lmcodec's lossy decode."""
    lines = [f"Images: {res['n_images']}; codec threads: {res['threads']}; times: medians over images "
             f"(each the median of {res['repeat']} run(s)).", "",
             "| codec | mean bpp | encode ms | decode ms | exact |", "|---|---|---|---|---|"]
    for r in res["rows"].values():
        if "skip" in r:
            lines.append(f"| {r['label']} | skipped: {r['skip']} | | | |")
            continue
        exact = "yes" if r["exact"] else f"**no** (max error {r['max_err']})"
        lines.append(f"| {r['label']} | {r['bpp']:.3f} | {r['enc_ms']:.1f} | {r['dec_ms']:.1f} | {exact} |")
    lossy = res.get("lossy_decode_ms")
    lmc = res["rows"].get("lmc", {})
    if lossy and "enc_ms" in lmc:
        lines += ["", f"lmcodec lossy decode (quality 75, same threads): {lossy:.1f} ms median; lossless encode "
                  f"{lmc['enc_ms'] / lossy:.2f}x and decode {lmc['dec_ms'] / lossy:.2f}x that (target: each <= 3x)."]
    lines += ["", "Near-lossless (`max_error=k`: every sample within k):", "",
              "| k | mean bpp | mean PSNR dB | max error seen |", "|---|---|---|---|"]
    for k, r in res["near"].items():
        lines.append(f"| {k} | {r['bpp']:.3f} | {r['psnr']:.2f} | {r['max_err']} |")
    if lossy_points:
        lines += ["", "The lossy curve beside it (docs/results/kodak_rd.json, lmcodec):", "",
                  "| quality | mean bpp | mean PSNR dB |", "|---|---|---|"]
        for p in lossy_points:
            lines.append(f"| {p['quality']:g} | {p['bpp']:.3f} | {p['psnr']:.2f} |")
    if plot:
        lines += ["", f"![PSNR vs bpp, lossy to lossless]({plot})"]
    return "\n".join(lines) + "\n"


def plot_lossless(res: Dict[str, Any], path: str, lossy_points: Optional[List[Dict[str, float]]] = None) -> None:
    """One PSNR-bpp plot from the lossy curve through near-lossless to lossless
    (drawn at the top edge, PSNR is infinite there). Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    if lossy_points:
        ax.plot([p["bpp"] for p in lossy_points], [p["psnr"] for p in lossy_points], "o-", label="lmcodec lossy")
    ks = sorted(res["near"])
    ax.plot([res["near"][k]["bpp"] for k in ks], [res["near"][k]["psnr"] for k in ks], "s-",
            label="lmcodec max_error=k")
    for k in ks:
        ax.annotate(f"k={k}", (res["near"][k]["bpp"], res["near"][k]["psnr"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    top = max([res["near"][k]["psnr"] for k in ks] + [40.0]) + 4
    for n, r in res["rows"].items():
        if "bpp" in r and r["exact"]:
            ax.plot([r["bpp"]], [top], "^" if n == "lmc" else "x", label=f"{r['label']} (exact)")
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB); lossless drawn at the top")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
