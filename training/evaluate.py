"""Evaluate shipped (or candidate) weights on Kodak -- evaluation only.

    python -m training.evaluate [--weights python/lmcodec/models/hyperprior.lmw]
                                [--codecs lmc,pca,jpeg,webp,avif] [--limit N]
                                [--json out.json] [--report out.md] [--plot out.png]

* RD from real stream sizes (bpp = bytes*8/pixels, averaged over images),
  RGB PSNR and MS-SSIM, via lmcodec.bench (the same engine as `lmcodec bench`);
  BD-rate of every codec against JPEG 4:2:0, WebP and AVIF computed in the
  same run.
* The gap between the rate the entropy model predicts (ideal code length under
  the quantized tables, from the Python reference codec) and the real stream
  size.
With --weights pointing to a candidate file, the candidate replaces the shipped
model for this process only (used to decide whether an export is better).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def rate_gap(weights: Path, images: list, qualities=(20, 50, 80)) -> dict | None:
    import lmcodec

    from .reference_codec import ReferenceCodec

    ref = ReferenceCodec(weights)
    if ref.ctx is not None:  # the reference estimates the plain hyperprior's rate; it does not encode LATC
        return None
    est = real = 0.0
    for _, img in images:
        for q in qualities:
            est += ref.estimated_bits(img, q)
            data = lmcodec.encode(img, q)
            real += 8 * sum(v for k, v in lmcodec.info(data).sections.items() if k in ("SIDE", "LATN"))
    return {"estimated_bits": est, "real_bits": real, "gap_percent": 100.0 * (real - est) / est}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--kodak", default=str(KODAK))
    ap.add_argument("--codecs", default="lmc,pca,jpeg,webp,avif")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--qualities", default=None, help="lmc qualities, comma separated")
    ap.add_argument("--gap-images", type=int, default=4)
    ap.add_argument("--json", default=None)
    ap.add_argument("--report", default=None)
    ap.add_argument("--plot", default=None)
    ap.add_argument("--reference", default=str(Path(__file__).resolve().parents[2] / "shared" / "reference" /
                                                "kodak_published_rd.json"))
    args = ap.parse_args(argv)

    import lmcodec
    from lmcodec import _api, bench

    weights = Path(args.weights) if args.weights else _api.MODELS_DIR / "hyperprior.lmw"
    if args.weights:
        tmp = Path(tempfile.mkdtemp())
        for f in _api.MODELS_DIR.glob("*.lmw"):
            shutil.copy(f, tmp / f.name)
        shutil.copy(weights, tmp / "hyperprior.lmw")
        _api.MODELS_DIR = tmp
        _api._models.clear()
    images = bench.load_images(args.kodak, limit=args.limit)
    qualities = None
    if args.qualities:
        qualities = {"lmc": [float(v) for v in args.qualities.split(",")]}
    ref = bench.load_reference(args.reference) if args.reference and Path(args.reference).exists() else None
    result = bench.run_bench(images, args.codecs.split(","), qualities=qualities, reference=ref)
    gap = rate_gap(weights, images[: args.gap_images]) if args.gap_images > 0 else None
    if gap is not None:
        result["rate_gap"] = gap
    mi = lmcodec.model_info("hyperprior")
    result["model"] = mi
    print(bench.summary_text(result))
    print(f"[evaluate] model {mi['model_id']} steps {mi.get('train_steps')} hours {mi.get('train_hours', 0):.2f}"
          + (f"; estimated vs real rate gap {gap['gap_percent']:+.3f} %" if gap is not None else ""))
    if args.json:
        bench.write_json(result, args.json)
    if args.report:
        bench.write_report(result, args.report, plot=args.plot)
    if args.plot:
        bench.plot_rd(result, args.plot, reference=ref)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
