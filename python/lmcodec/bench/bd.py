"""Bjøntegaard tables: BD-rate / BD-PSNR of every measured curve against the
anchor codecs, and against published curves read from a JSON file.  The
Bjøntegaard integrals are :func:`lmcodec.metrics.bd_rate` / ``bd_psnr``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ._compat import metrics as _metrics
from .codecs import ANCHORS


def _finite(x: float) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


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

