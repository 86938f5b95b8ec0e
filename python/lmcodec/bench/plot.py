"""Rate-distortion plots of a benchmark result (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from .bd import _curve, _reference_points, load_reference


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

