"""Spatial quality maps measured: the automatic mode on training images, and
ROI masks on Kodak at equal file size.

    python benchmarks/roi.py auto  [--limit N] [--qualities 35 60] [--json F]
    python benchmarks/roi.py kodak [--images kodim23 ...] [--figure F.png] [--explain DIR] [--json F]

auto: the direction and strength of roi="auto" (quality points between the
busiest and the smoothest 64x64 block, _quality_map.offsets_by_structure:
positive = more quality where the structure / edges are, negative = more
where the image is smooth; roi="auto" ships the sign and size chosen here) is
swept on held-out TRAINING images (../shared/data/train: sun_hays80_half and
urban100, lossless WebP), split in two halves: one to choose, one to check.
Every map stream is matched to the plain stream's size (bisection over the
base quality, within 1 %), and compared by PSNR and MS-SSIM (dB).

kodak (reporting only, nothing is tuned here): a given mask per image (the
rectangles in MASKS: the subject, drawn by eye, never changed after a run)
at the default ROI strength; PSNR inside / outside the mask at equal size,
and the share of the latent bits inside the mask (lmcodec.explain).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
from PIL import Image

import lmcodec
from lmcodec import _quality_map
from lmcodec.metrics import ms_ssim, msssim_db, psnr

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# (top, bottom, left, right) of each Kodak image's region of interest
MASKS = {"kodim23": (128, 320, 64, 576), "kodim04": (64, 448, 96, 448), "kodim15": (96, 400, 160, 544),
         "kodim20": (160, 448, 128, 704)}


def equal_size(img: np.ndarray, target: int, **kw) -> bytes:
    """The stream with these encode options whose size is nearest target (bisection over the base quality)."""
    lo, hi, best = 1.0, 100.0, None
    for _ in range(14):
        mid = (lo + hi) / 2
        d = lmcodec.encode(img, mid, **kw)
        if best is None or abs(len(d) - target) < abs(len(best) - target):
            best = d
        if abs(len(d) - target) <= 0.005 * target:
            break
        lo, hi = (mid, hi) if len(d) < target else (lo, mid)
    return best


def _training_images(limit: int) -> List[Path]:
    files = sorted((DATA / "train" / "sun_hays80_half").glob("*.webp"))[: limit // 2]
    files += sorted((DATA / "train" / "urban100").glob("*.webp"))[: limit - len(files)]
    return files


def run_auto(args) -> Dict:
    strengths = args.strengths
    files = _training_images(args.limit)
    rows = []
    for k, f in enumerate(files):
        img = np.asarray(Image.open(f).convert("RGB"))
        for q in args.qualities:
            plain = lmcodec.encode(img, q)
            dec = lmcodec.decode(plain)
            base = dict(psnr=psnr(dec, img), msssim=msssim_db(ms_ssim(dec, img)), bytes=len(plain))
            for s in strengths:
                qm = _quality_map.offsets_by_structure(img, s)
                d = equal_size(img, len(plain), quality_map=qm)
                x = lmcodec.decode(d)
                rows.append(dict(image=f.name, half=k % 2, quality=q, strength=s,
                                 d_psnr=psnr(x, img) - base["psnr"],
                                 d_msssim=msssim_db(ms_ssim(x, img)) - base["msssim"],
                                 size_ratio=len(d) / len(plain)))
        print(f"{f.name} done", file=sys.stderr)
    summary = {}
    for half in (0, 1):
        for s in strengths:
            r = [x for x in rows if x["half"] == half and x["strength"] == s]
            summary[f"half{half} strength {s:+g}"] = dict(
                n=len(r), d_psnr=float(np.mean([x["d_psnr"] for x in r])),
                d_msssim_db=float(np.mean([x["d_msssim"] for x in r])),
                size_ratio=float(np.mean([x["size_ratio"] for x in r])))
    for k, v in summary.items():
        print(f"{k:24s} n={v['n']:3d}  dPSNR {v['d_psnr']:+.3f} dB  dMS-SSIM {v['d_msssim_db']:+.3f} dB  "
              f"size {v['size_ratio']:.4f}")
    return dict(rows=rows, summary=summary)


def _mask(name: str, shape) -> np.ndarray:
    t, b, l, r = MASKS[name]
    m = np.zeros(shape[:2], np.uint8)
    m[t:b, l:r] = 255
    return m


def run_kodak(args) -> Dict:
    out = []
    figure_rows = []
    for name in args.images:
        img = np.asarray(Image.open(DATA / "kodak" / f"{name}.png").convert("RGB"))
        mask = _mask(name, img.shape)
        inside = mask > 0
        for q in args.qualities:
            plain = lmcodec.encode(img, q)
            roi = equal_size(img, len(plain), roi=mask)
            a, b = lmcodec.decode(plain), lmcodec.decode(roi)
            ea, eb = lmcodec.explain(plain), lmcodec.explain(roi)
            share = [float(e.bits_y[inside].sum() / e.bits_y.sum()) for e in (ea, eb)]
            r = dict(image=name, quality=q, bytes_plain=len(plain), bytes_roi=len(roi),
                     roi_base_quality=lmcodec.info(roi).quality,
                     psnr_in_plain=psnr(a[inside], img[inside]), psnr_in_roi=psnr(b[inside], img[inside]),
                     psnr_out_plain=psnr(a[~inside], img[~inside]), psnr_out_roi=psnr(b[~inside], img[~inside]),
                     psnr_plain=psnr(a, img), psnr_roi=psnr(b, img), bits_in_plain=share[0], bits_in_roi=share[1],
                     roi_fraction=float(inside.mean()))
            auto = lmcodec.decode(equal_size(img, len(plain), roi="auto"))
            r.update(auto_d_psnr=psnr(auto, img) - r["psnr_plain"],
                     auto_d_msssim_db=msssim_db(ms_ssim(auto, img)) - msssim_db(ms_ssim(a, img)))
            out.append(r)
            print(f"{name} q{q:g}: {len(plain)} / {len(roi)} bytes; inside {r['psnr_in_plain']:.2f} -> "
                  f"{r['psnr_in_roi']:.2f} dB, outside {r['psnr_out_plain']:.2f} -> {r['psnr_out_roi']:.2f} dB, "
                  f"latent bits inside {share[0] * 100:.1f} -> {share[1] * 100:.1f} %; auto: dPSNR "
                  f"{r['auto_d_psnr']:+.3f} dB, dMS-SSIM {r['auto_d_msssim_db']:+.3f} dB", flush=True)
            if name == args.images[0] and q == args.qualities[0]:
                figure_rows = (img, a, b, ea, eb, mask, r)
                if args.explain:
                    from lmcodec._explain_report import write_report

                    write_report(lmcodec.explain(img, q), args.explain, f"{name}.png")
                    if args.shrink:
                        shrink_pngs(sorted(Path(args.explain).glob("*.png")), args.shrink // 2)
    if args.figure and figure_rows:
        _figure(figure_rows, args.figure)
        if args.shrink:
            shrink_pngs([args.figure], args.shrink)
    return dict(rows=out)


def shrink_pngs(paths, max_width: int) -> None:
    """Docs copies: downscaled to max_width and quantised to 256 colours (small enough to commit)."""
    for f in paths:
        with Image.open(f) as im:
            im = im.convert("RGB")
            if im.width > max_width:
                im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
            im.quantize(256, method=Image.Quantize.MEDIANCUT).save(f, optimize=True)


def _figure(rows, path) -> None:
    """Plain vs ROI at equal size: decoded crops and latent-bit maps, mask outlined."""
    from PIL import ImageDraw

    from lmcodec._explain_report import _font, _overlay, colormap

    img, a, b, ea, eb, mask, r = rows
    vmax = float(np.percentile(np.concatenate([ea.bits_y.ravel(), eb.bits_y.ravel()]), 99.5))
    tiles = [(a, f"plain q{r['quality']:g}: {r['bytes_plain']} B, ROI {r['psnr_in_plain']:.2f} dB, "
                 f"rest {r['psnr_out_plain']:.2f} dB"),
             (b, f"ROI map: {r['bytes_roi']} B, ROI {r['psnr_in_roi']:.2f} dB, rest {r['psnr_out_roi']:.2f} dB"),
             (_overlay(a, colormap(ea.bits_y, vmax)), f"plain: latent bits, {r['bits_in_plain'] * 100:.0f} % in ROI"),
             (_overlay(b, colormap(eb.bits_y, vmax)), f"ROI map: latent bits, {r['bits_in_roi'] * 100:.0f} % in ROI")]
    h, w = img.shape[:2]
    canvas = Image.new("RGB", (2 * w, 2 * (h + 22)), "white")
    d = ImageDraw.Draw(canvas)
    ys, xs = np.nonzero(mask)
    for k, (t, cap) in enumerate(tiles):
        x0, y0 = (k % 2) * w, (k // 2) * (h + 22)
        canvas.paste(Image.fromarray(t), (x0, y0 + 22))
        d.text((x0 + 4, y0 + 4), cap, fill="black", font=_font())
        d.rectangle([x0 + xs.min(), y0 + 22 + ys.min(), x0 + xs.max(), y0 + 22 + ys.max()], outline=(0, 255, 255),
                    width=2)
    canvas.save(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["auto", "kodak"])
    p.add_argument("--limit", type=int, default=16, help="auto: training images (half sun_hays80_half, half urban100)")
    p.add_argument("--qualities", type=float, nargs="+", default=None)
    p.add_argument("--strengths", type=float, nargs="+", default=[-30.0, -15.0, 15.0, 30.0],
                   help="auto: strengths to sweep (negative = more quality where the image is smooth)")
    p.add_argument("--images", nargs="+", default=list(MASKS), help="kodak: images (with a mask in MASKS)")
    p.add_argument("--figure", default=None, help="kodak: write the comparison figure of the first image here")
    p.add_argument("--explain", default=None, help="kodak: write the explain report of the first image here")
    p.add_argument("--json", default=None)
    p.add_argument("--shrink", type=int, default=0, metavar="W",
                   help="kodak: downscale the figure to W pixels wide (the explain PNGs to W/2) and quantise them "
                        "(docs copies)")
    args = p.parse_args(argv)
    if args.qualities is None:
        args.qualities = [35.0, 60.0] if args.mode == "auto" else [30.0, 50.0, 75.0]
    res = run_auto(args) if args.mode == "auto" else run_kodak(args)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
