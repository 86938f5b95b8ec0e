"""Robustness of lmcodec against the classical codecs on noisy, re-compressed and damaged inputs.

    python benchmarks/robustness.py [IMAGE_OR_DIR ...] [--limit N] [--crop S] [--json F] [--report F.md]

Learned codecs are trained on clean photos; this measures what happens when the
input is not one. Conditions (each applied to every image, fixed seeds):

* clean;
* Gaussian noise, sigma 2, 5 and 10 (8-bit levels, clipped to 0..255);
* a JPEG-compressed source (quality 50, decoded): re-compression;
* missing regions: 10 % of the 32x32 blocks blanked to black.

Each codec (lmcodec with and without its RDO quantiser, JPEG, WebP, AVIF, by
Pillow) codes the conditioned image at four qualities. Reported per condition:
mean bpp and PSNR against the input the codec was given (fidelity) and against
the clean image (what a viewer wants), BD-rate (PSNR against the input) of
each codec against WebP, and BD-PSNR against the clean image of lmcodec
against WebP. Images default to ../shared/data/kodak (evaluation only).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
from PIL import Image

import lmcodec
from lmcodec.metrics import bd_psnr, bd_rate, psnr

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "kodak"

CONDITIONS = ["clean", "noise2", "noise5", "noise10", "jpeg50", "blocks10"]
QUALITIES = {"lmc": [25, 45, 65, 85], "lmc-plain": [25, 45, 65, 85], "jpeg": [30, 50, 70, 90],
             "webp": [30, 50, 70, 90], "avif": [30, 50, 70, 90]}


def condition(img: np.ndarray, name: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if name == "clean":
        return img
    if name.startswith("noise"):
        sigma = float(name[5:])
        return np.clip(np.rint(img.astype(np.float64) + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)
    if name.startswith("jpeg"):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(name[4:]))
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    if name.startswith("blocks"):
        out = img.copy()
        h, w = img.shape[:2]
        for by in range(0, h, 32):
            for bx in range(0, w, 32):
                if rng.random() < float(name[6:]) / 100:
                    out[by:by + 32, bx:bx + 32] = 0
        return out
    raise ValueError(name)


def _pil(fmt: str, **kw) -> Tuple[Callable, Callable]:
    def enc(a: np.ndarray, q: int) -> bytes:
        b = io.BytesIO()
        Image.fromarray(a).save(b, format=fmt, quality=int(q), **kw)
        return b.getvalue()

    def dec(d: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(d)).convert("RGB"))

    return enc, dec


def codecs() -> Dict[str, Tuple[Callable, Callable]]:
    from PIL import features

    out = {"lmc": (lambda a, q: lmcodec.encode(a, q), lmcodec.decode),
           "lmc-plain": (lambda a, q: lmcodec.encode(a, q, rdo=False), lmcodec.decode),
           "jpeg": _pil("JPEG", optimize=True)}
    if features.check("webp"):
        out["webp"] = _pil("WEBP", method=6)
    if features.check("avif"):
        out["avif"] = _pil("AVIF", speed=6)
    return out


def load(paths: List[str], limit: int, crop: int) -> List[Tuple[str, np.ndarray]]:
    files: List[Path] = []
    for p in paths or [str(DEFAULT_IMAGES)]:
        pp = Path(p)
        files += sorted(f for f in pp.iterdir() if f.suffix.lower() in (".png", ".jpg", ".webp")) if pp.is_dir() else [pp]
    files = files[:limit] if limit else files
    out = []
    for f in files:
        a = np.asarray(Image.open(f).convert("RGB"))
        if crop:
            h, w = a.shape[:2]
            a = np.ascontiguousarray(a[(h - min(h, crop)) // 2:][:crop, (w - min(w, crop)) // 2:][:, :crop])
        out.append((f.name, a))
    return out


def run(images: List[Tuple[str, np.ndarray]], conditions=CONDITIONS, log=print) -> Dict:
    cs = codecs()
    res: Dict = {"images": [n for n, _ in images], "conditions": {}}
    for cond in conditions:
        curves: Dict[str, List[Dict]] = {}
        for name, (enc, dec) in cs.items():
            pts = []
            for q in QUALITIES[name]:
                bpp, p_in, p_clean = [], [], []
                for k, (_, clean) in enumerate(images):
                    x = condition(clean, cond, seed=1000 + k)
                    d = enc(x, q)
                    y = dec(d)
                    h, w = x.shape[:2]
                    bpp.append(len(d) * 8 / (h * w))
                    p_in.append(psnr(x, y))
                    p_clean.append(psnr(clean, y))
                pts.append({"quality": q, "bpp": float(np.mean(bpp)), "psnr_input": float(np.mean(p_in)),
                            "psnr_clean": float(np.mean(p_clean))})
            curves[name] = pts
        summary = {}
        if "webp" in curves:
            rw = [p["bpp"] for p in curves["webp"]]
            for name, pts in curves.items():
                r = [p["bpp"] for p in pts]
                summary[name] = {
                    "bd_rate_vs_webp": bd_rate(rw, [p["psnr_input"] for p in curves["webp"]], r,
                                               [p["psnr_input"] for p in pts]),
                    "bd_psnr_clean_vs_webp": bd_psnr(rw, [p["psnr_clean"] for p in curves["webp"]], r,
                                                     [p["psnr_clean"] for p in pts])}
        rp = [p["bpp"] for p in curves["lmc-plain"]]
        summary["lmc"]["bd_rate_rdo_vs_plain"] = bd_rate(rp, [p["psnr_input"] for p in curves["lmc-plain"]],
                                                         [p["bpp"] for p in curves["lmc"]],
                                                         [p["psnr_input"] for p in curves["lmc"]])
        res["conditions"][cond] = {"curves": curves, "summary": summary}
        log(f"{cond}: " + ", ".join(f"{k} {v['bd_rate_vs_webp']:+.1f} %" for k, v in summary.items()
                                    if np.isfinite(v.get("bd_rate_vs_webp", np.nan))))
    return res


def report(res: Dict) -> str:
    lines = ["# Robustness: noisy, re-compressed and damaged inputs", "",
             f"`python benchmarks/robustness.py` on {len(res['images'])} images ({', '.join(res['images'][:6])}"
             f"{', ...' if len(res['images']) > 6 else ''}); lmcodec {lmcodec.__version__}, model "
             f"{lmcodec.model_info()['model_id'][:12]}.", "",
             "BD-rate (PSNR against the codec's input) against WebP, per condition (negative = fewer bits):", "",
             "| condition | " + " | ".join(next(iter(res["conditions"].values()))["summary"]) + " | lmc RDO vs plain |",
             "|---|" + "---:|" * (len(next(iter(res["conditions"].values()))["summary"]) + 1)]
    for cond, r in res["conditions"].items():
        s = r["summary"]
        lines.append(f"| {cond} | " + " | ".join(f"{v['bd_rate_vs_webp']:+.1f} %" for v in s.values())
                     + f" | {s['lmc']['bd_rate_rdo_vs_plain']:+.1f} % |")
    lines += ["", "BD-PSNR against the **clean** image, lmcodec minus WebP at equal rate (positive = lmcodec closer "
                  "to the clean picture):", "", "| condition | lmc | lmc-plain | jpeg | avif |", "|---|---:|---:|---:|---:|"]
    for cond, r in res["conditions"].items():
        s = r["summary"]
        lines.append(f"| {cond} | " + " | ".join(f"{s[c]['bd_psnr_clean_vs_webp']:+.2f} dB" if c in s else "–"
                                                  for c in ("lmc", "lmc-plain", "jpeg", "avif")) + " |")
    lines += ["", "Mean points (bpp / PSNR vs input / PSNR vs clean):", ""]
    for cond, r in res["conditions"].items():
        lines.append(f"- **{cond}**: " + "; ".join(
            f"{c} " + ", ".join(f"{p['bpp']:.2f}/{p['psnr_input']:.1f}/{p['psnr_clean']:.1f}" for p in pts)
            for c, pts in r["curves"].items()))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", help="image files or folders (default: ../shared/data/kodak)")
    ap.add_argument("--limit", type=int, default=0, help="use the first N images")
    ap.add_argument("--crop", type=int, default=0, help="centre crops of this size (0 = whole images)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--json")
    ap.add_argument("--report")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    imgs = load(args.images, args.limit, args.crop)
    if not imgs:
        print("no images", file=sys.stderr)
        return 1
    res = run(imgs, args.conditions.split(","), log=lambda s: print(s, file=sys.stderr))
    res["seconds"] = time.perf_counter() - t0
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
    text = report(res)
    if args.report:
        Path(args.report).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
