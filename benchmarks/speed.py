"""Encode/decode speed of lmcodec on Kodak, beside the PyTorch reference on
the same weights and Pillow's JPEG / WebP / AVIF decoders, all in one run.

    python benchmarks/speed.py [--kodak ../shared/data/kodak] [--limit 24] [--quality 50] [--repeat 3]

Prints, per configuration, the median ms per image and MP/s, and the ratios
(PyTorch / lmcodec). The PyTorch rows need torch and the training package
(run from the repository root); they are skipped without them. This machine
is noisy: compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import lmcodec

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"


def timed(fn, repeat: int) -> float:
    best = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return min(best)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default=str(KODAK))
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--quality", type=float, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)

    files = sorted(Path(args.kodak).glob("*.png"))[: args.limit]
    if not files:
        print(f"no images in {args.kodak}", file=sys.stderr)
        return 1
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    mp = [im.shape[0] * im.shape[1] / 1e6 for im in images]
    rows = {}

    def record(name, secs):
        rows[name] = secs

    streams = [lmcodec.encode(im, args.quality, threads=2) for im in images]
    bpp = statistics.mean(len(s) * 8 / (im.shape[0] * im.shape[1]) for s, im in zip(streams, images))
    for path in ("avx2", "scalar"):
        lmcodec.set_force_scalar(path == "scalar")
        if lmcodec.kernel_path() != path:
            continue
        for threads in (1, 2):
            if path == "scalar" and threads == 2:
                continue
            # the portable path emulates FMA exactly (~20 s per image on x86): one image, once
            n, rep = (1, 1) if path == "scalar" else (len(images), args.repeat)
            record(f"lmcodec {path} encode {threads}T",
                   [timed(lambda im=im: lmcodec.encode(im, args.quality, threads=threads), rep) for im in images[:n]])
            record(f"lmcodec {path} decode {threads}T",
                   [timed(lambda s=s: lmcodec.decode(s, threads=threads), rep) for s in streams[:n]])
    lmcodec.set_force_scalar(False)

    if not args.no_torch:
        try:
            import torch

            sys.path.insert(0, str(ROOT))
            from training.reference_codec import ReferenceCodec

            ref = ReferenceCodec(lmcodec._api.MODELS_DIR / "hyperprior.lmw")
            for threads in (1, 2):
                torch.set_num_threads(threads)
                record(f"pytorch reference encode {threads}T",
                       [timed(lambda im=im: ref.encode(im, args.quality), args.repeat) for im in images])
                record(f"pytorch reference decode {threads}T",
                       [timed(lambda s=s: ref.decode(s), args.repeat) for s in streams])
        except ImportError as e:
            print(f"(PyTorch reference skipped: {e})")

    for fmt, kw in (("JPEG", {"quality": 75}), ("WEBP", {"quality": 75}), ("AVIF", {"quality": 60})):
        try:
            blobs = []
            for im in images:
                b = io.BytesIO()
                Image.fromarray(im).save(b, format=fmt, **kw)
                blobs.append(b.getvalue())

            def dec(b):
                with Image.open(io.BytesIO(b)) as x:
                    x.load()

            record(f"Pillow {fmt} decode", [timed(lambda b=b: dec(b), args.repeat) for b in blobs])
        except (OSError, KeyError, ValueError) as e:
            print(f"({fmt} skipped: {e})")

    print(f"lmcodec {lmcodec.__version__}, model {lmcodec.model_info()['model_id'][:12]}, {len(images)} Kodak images, "
          f"quality {args.quality:g} ({bpp:.3f} bpp), best of {args.repeat}, median over images")
    print(f"{'configuration':<34}{'ms/image':>10}{'MP/s':>8}")
    med = {}
    for name, secs in rows.items():
        m = statistics.median(secs)
        med[name] = m
        print(f"{name:<34}{m * 1e3:>10.1f}{statistics.median(mp) / m:>8.2f}")
    for op in ("encode", "decode"):
        for t in (1, 2):
            a, b = med.get(f"pytorch reference {op} {t}T"), med.get(f"lmcodec avx2 {op} {t}T")
            if a and b:
                print(f"speed-up over PyTorch, {op} {t}T: {a / b:.2f}x")
    if "lmcodec avx2 encode 2T" in med and "lmcodec avx2 decode 2T" in med:
        print(f"encode / decode time (2T): {med['lmcodec avx2 encode 2T'] / med['lmcodec avx2 decode 2T']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
