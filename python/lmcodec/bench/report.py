"""Writing a benchmark result: strict JSON, the Markdown report and the short
terminal summary."""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np


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

