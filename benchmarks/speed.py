"""Encode/decode speed of lmcodec on Kodak, beside the PyTorch reference on
the same weights and Pillow's JPEG / WebP / AVIF decoders, all in one run.

    python benchmarks/speed.py [--kodak ../shared/data/kodak] [--limit 24] [--quality 50] [--repeat 3]
                               [--thumbs 64,256] [--json out.json]

Prints, per configuration, the median ms per image (each image: best of
--repeat) and MP/s, and the ratios (PyTorch / lmcodec), both as a ratio of
medians and as the median of per-image ratios (lmcodec and the reference are
timed back to back on each image). The reference decodes exactly, so its
h_s is the export's integer network run as float64 convolutions; its h_s is
also timed in float32 (as a float PyTorch codec such as CompressAI runs it:
faster, not reproducible across machines) and the decode ratio is printed a
second time against a reference with that float32 h_s. Thumbnails (centre
crops, --thumbs) are decoded too, beside Pillow's JPEG decoder on the same
crops, since fixed costs dominate there. Then a per-stage profile of lmcodec at 2
threads (ms per image, multiply-adds, GFLOP/s and the fraction of numpy's
sgemm rate measured in the same run). The PyTorch rows need torch and the
training package (run from the repository root); they are skipped without
them. This machine is noisy: compare rows of the same run only.
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


def sgemm_ceiling() -> float:
    """fp32 GFLOP/s of numpy's matrix product (OpenBLAS, its default threads)
    on 2048^3: the practical ceiling the per-layer figures are compared with."""
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    a @ a
    return 2 * 2048**3 / timed(lambda: a @ a, 5) / 1e9


def stage_profile(images, streams, quality, threads):
    """Per-stage totals of one decode and one encode of every image."""
    from lmcodec import _core

    _core.internal.profile_take()
    _core.internal.profile_enable(True)
    try:
        for s in streams:
            lmcodec.decode(s, threads=threads)
        for im in images:
            lmcodec.encode(im, quality, threads=threads)
    finally:
        _core.internal.profile_enable(False)
    return _core.internal.profile_take()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default=str(KODAK))
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--quality", type=float, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-profile", action="store_true", help="skip the per-stage profile")
    ap.add_argument("--thumbs", default="64,256",
                    help="also decode centre crops of these sizes (thumbnails; '' to skip)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    files = sorted(Path(args.kodak).glob("*.png"))[: args.limit]
    if not files:
        print(f"no images in {args.kodak}", file=sys.stderr)
        return 1
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    mp = [im.shape[0] * im.shape[1] / 1e6 for im in images]
    rows: dict[str, list[float]] = {}
    row_mp: dict[str, float] = {}  # megapixels per image where not a whole Kodak image

    def record(name, secs):
        rows.setdefault(name, []).append(secs)

    streams = [lmcodec.encode(im, args.quality, threads=2) for im in images]
    bpp = statistics.mean(len(s) * 8 / (im.shape[0] * im.shape[1]) for s, im in zip(streams, images))
    path = lmcodec.kernel_path()
    other_paths = [p for p in lmcodec.kernel_paths() if p not in ("scalar", path)]

    ref = None
    if not args.no_torch:
        try:
            import torch

            sys.path.insert(0, str(ROOT))
            from training.reference_codec import ReferenceCodec

            ref = ReferenceCodec(lmcodec._api.MODELS_DIR / "hyperprior.lmw")
        except ImportError as e:
            print(f"(PyTorch reference skipped: {e})")

    # Paired timing: each image is timed on lmcodec and on the PyTorch
    # reference back to back, so that the machine's slow and fast minutes
    # fall on both and the per-image ratios stay meaningful.
    for threads in (1, 2):
        if ref is not None:
            torch.set_num_threads(threads)
        for im, s in zip(images, streams):
            record(f"lmcodec {path} encode {threads}T", timed(lambda: lmcodec.encode(im, args.quality, threads=threads), args.repeat))
            record(f"lmcodec {path} decode {threads}T", timed(lambda: lmcodec.decode(s, threads=threads), args.repeat))
            # the other SIMD paths this CPU runs (avx2 beside avx512), same image
            for other in other_paths:
                lmcodec.set_kernels(other)
                try:
                    record(f"lmcodec {other} encode {threads}T",
                           timed(lambda: lmcodec.encode(im, args.quality, threads=threads), args.repeat))
                    record(f"lmcodec {other} decode {threads}T",
                           timed(lambda: lmcodec.decode(s, threads=threads), args.repeat))
                finally:
                    lmcodec.set_kernels(path)
            if ref is not None:
                if ref.ctx is None:  # the reference encodes the plain hyperprior only (it decodes LATC)
                    record(f"pytorch reference encode {threads}T", timed(lambda: ref.encode(im, args.quality),
                                                                         args.repeat))
                record(f"pytorch reference decode {threads}T", timed(lambda: ref.decode(s), args.repeat))
                # The reference decodes the stream exactly, so its h_s is the
                # export's integer network, run as float64 convolutions (exact);
                # a float PyTorch codec (CompressAI) runs h_s in float32, which is
                # faster but not reproducible across machines. Both timed, so the
                # ratio can also be given against such a reference.
                z_hat = ref._decode_latents(s)[1]
                with torch.no_grad():
                    record(f"pytorch h_s exact (float64) {threads}T", timed(lambda: ref._params(z_hat), args.repeat))
                    record(f"pytorch h_s float32 {threads}T", timed(lambda: ref.model.h_s(z_hat.float()), args.repeat))
    if path != "scalar":
        # the portable path emulates FMA exactly (~20 s per image on x86): one image, once
        lmcodec.set_kernels("scalar")
        try:
            record("lmcodec scalar encode 1T", timed(lambda: lmcodec.encode(images[0], args.quality, threads=1), 1))
            record("lmcodec scalar decode 1T", timed(lambda: lmcodec.decode(streams[0], threads=1), 1))
        finally:
            lmcodec.set_kernels(path)

    # Thumbnails: centre crops, where fixed costs (weights, tiles, threads) show.
    for size in [int(x) for x in args.thumbs.split(",") if x.strip()]:
        crops = [np.ascontiguousarray(im[(im.shape[0] - size) // 2:][:size, (im.shape[1] - size) // 2:][:, :size])
                 for im in images if min(im.shape[:2]) >= size]
        for c in crops:
            s = lmcodec.encode(c, args.quality, threads=1)
            for threads in (1, 2):
                name = f"lmcodec {path} decode {size}x{size} {threads}T"
                row_mp[name] = size * size / 1e6
                record(name, timed(lambda: lmcodec.decode(s, threads=threads), args.repeat))
            b = io.BytesIO()
            Image.fromarray(c).save(b, format="JPEG", quality=75)
            blob = b.getvalue()

            def dec_jpeg(blob=blob):
                with Image.open(io.BytesIO(blob)) as x:
                    x.load()

            row_mp[f"Pillow JPEG decode {size}x{size}"] = size * size / 1e6
            record(f"Pillow JPEG decode {size}x{size}", timed(dec_jpeg, args.repeat))

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

            for b in blobs:
                record(f"Pillow {fmt} decode", timed(lambda b=b: dec(b), args.repeat))
        except (OSError, KeyError, ValueError) as e:
            print(f"({fmt} skipped: {e})")

    out = {"version": lmcodec.__version__, "model": lmcodec.model_info()["model_id"], "images": len(images),
           "quality": args.quality, "bpp": bpp, "repeat": args.repeat, "kernel_path": path, "rows": {}, "ratios": {}}
    print(f"lmcodec {lmcodec.__version__}, model {out['model'][:12]}, {len(images)} Kodak images, "
          f"quality {args.quality:g} ({bpp:.3f} bpp), best of {args.repeat}, median over images")
    print(f"{'configuration':<34}{'ms/image':>10}{'MP/s':>8}")
    med = {}
    for name, secs in rows.items():
        m = statistics.median(secs)
        med[name] = m
        mps = row_mp.get(name, statistics.median(mp)) / m
        out["rows"][name] = {"median_ms": m * 1e3, "mp_per_s": mps, "n": len(secs)}
        print(f"{name:<34}{m * 1e3:>10.1f}{mps:>8.2f}")
    for op in ("encode", "decode"):
        for t in (1, 2):
            a, b = rows.get(f"pytorch reference {op} {t}T"), rows.get(f"lmcodec {path} {op} {t}T")
            if a and b:
                paired = statistics.median(x / y for x, y in zip(a, b))
                out["ratios"][f"speed-up {op} {t}T"] = {"of_medians": med[f"pytorch reference {op} {t}T"] / med[f"lmcodec {path} {op} {t}T"],
                                                        "median_of_pairs": paired}
                print(f"speed-up over PyTorch, {op} {t}T: {statistics.median(a) / statistics.median(b):.2f}x "
                      f"(median of per-image ratios {paired:.2f}x)")
    for t in (1, 2):
        a, b = rows.get(f"pytorch reference decode {t}T"), rows.get(f"lmcodec {path} decode {t}T")
        h64, h32 = rows.get(f"pytorch h_s exact (float64) {t}T"), rows.get(f"pytorch h_s float32 {t}T")
        if a and b and h64 and h32:
            adj = [x - u + v for x, u, v in zip(a, h64, h32)]
            r_med = statistics.median(adj) / statistics.median(b)
            paired = statistics.median(x / y for x, y in zip(adj, b))
            out["ratios"][f"speed-up decode {t}T, reference with a float32 h_s"] = {"of_medians": r_med,
                                                                                   "median_of_pairs": paired}
            print(f"speed-up over PyTorch with its h_s in float32 (not exact), decode {t}T: {r_med:.2f}x "
                  f"(median of per-image ratios {paired:.2f}x)")
    for other in other_paths:
        for op in ("encode", "decode"):
            for t in (1, 2):
                a, b = rows.get(f"lmcodec {other} {op} {t}T"), rows.get(f"lmcodec {path} {op} {t}T")
                if a and b:
                    paired = statistics.median(x / y for x, y in zip(a, b))
                    out["ratios"][f"{path} over {other} {op} {t}T"] = {
                        "of_medians": statistics.median(a) / statistics.median(b), "median_of_pairs": paired}
                    print(f"{path} over {other}, {op} {t}T: {statistics.median(a) / statistics.median(b):.2f}x "
                          f"(median of per-image ratios {paired:.2f}x)")
    e2, d2 = med.get(f"lmcodec {path} encode 2T"), med.get(f"lmcodec {path} decode 2T")
    if e2 and d2:
        out["ratios"]["encode / decode 2T"] = e2 / d2
        print(f"encode / decode time (2T): {e2 / d2:.2f}")

    if not args.no_profile:
        ceiling = sgemm_ceiling()
        out["sgemm_gflops"] = ceiling
        out["profile_2T"] = []
        print(f"\nper stage, 2 threads, ms per image (one pass; direct-conv multiply-adds, so Winograd layers"
              f" can pass 100 %);\nfp32 ceiling: numpy sgemm 2048^3 = {ceiling:.0f} GFLOP/s")
        print(f"{'stage':<56}{'ms':>8}{'GMAC':>8}{'GFLOP/s':>9}{'ceiling':>9}")
        n = len(images)
        for e in stage_profile(images, streams, args.quality, 2):
            ms = e["seconds"] / n * 1e3
            gf = 2 * e["macs"] / e["seconds"] / 1e9 if e["macs"] and e["seconds"] > 0 else 0.0
            out["profile_2T"].append({"stage": e["name"], "ms": ms, "gmac": e["macs"] / n / 1e9, "gflops": gf})
            frac = f"{100 * gf / ceiling:8.0f}%" if gf else ""
            gmac = f"{e['macs'] / n / 1e9:8.3f}" if e["macs"] else ""
            gfs = f"{gf:9.1f}" if gf else ""
            print(f"{e['name']:<56}{ms:8.2f}{gmac:>8}{gfs:>9}{frac:>9}")
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
