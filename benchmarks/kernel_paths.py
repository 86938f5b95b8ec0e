"""Encode/decode time on every kernel path this CPU runs, side by side.

    python benchmarks/kernel_paths.py [IMAGES ...] [--quality 32] [--repeat 5] [--threads 1,2] [--json out.json]

With no images it uses the packaged sample (python/lmcodec/data/sample.png,
a 512 x 384 photo). For each image, thread count and path (scalar only for
one pass: it emulates FMA exactly and is ~100x slower), the encode and the
decode are timed back to back (best of --repeat), so that the machine's slow
and fast stretches fall on every path alike; it prints the medians over
images and each SIMD path's speed-up over the next slower one. It also checks
that every path wrote the same stream and decoded the same pixels. This is
the benchmark for a CPU with AVX-512 (AVX-512 against AVX2 on the same
machine); benchmarks/speed.py is the one against PyTorch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

import lmcodec  # the installed package (or PYTHONPATH=python with a built _core)

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="*")
    ap.add_argument("--quality", type=float, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--no-scalar", action="store_true", help="skip the (slow) portable path")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    files = [Path(f) for f in args.images] or [ROOT / "python" / "lmcodec" / "data" / "sample.png"]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    start = lmcodec.kernel_path()
    paths = [p for p in lmcodec.kernel_paths() if not (args.no_scalar and p == "scalar")]
    rows: dict = {}
    same = True
    try:
        for im in images:
            ref_stream = ref_pixels = None
            for t in threads:
                for p in paths:
                    lmcodec.set_kernels(p)
                    rep = 1 if p == "scalar" else args.repeat
                    if p == "scalar" and t != threads[0]:
                        continue
                    s = lmcodec.encode(im, args.quality, threads=t)
                    x = lmcodec.decode(s, threads=t)
                    if ref_stream is None:
                        ref_stream, ref_pixels = s, x
                    same = same and s == ref_stream and np.array_equal(x, ref_pixels)
                    rows.setdefault(f"{p} encode {t}T", []).append(
                        best_of(lambda: lmcodec.encode(im, args.quality, threads=t), rep) * 1e3)
                    rows.setdefault(f"{p} decode {t}T", []).append(
                        best_of(lambda: lmcodec.decode(s, threads=t), rep) * 1e3)
    finally:
        lmcodec.set_kernels(start)
    out = {"version": lmcodec.__version__, "model": lmcodec.model_info()["model_id"], "paths": paths,
           "images": [str(f) for f in files], "quality": args.quality, "repeat": args.repeat,
           "identical_bits": same, "median_ms": {k: statistics.median(v) for k, v in rows.items()}, "speedups": {}}
    print(f"lmcodec {lmcodec.__version__}: {len(images)} image(s), quality {args.quality:g}, paths {', '.join(paths)}"
          f" (auto: {start}); every path gave the same stream and pixels: {same}")
    for k, v in out["median_ms"].items():
        print(f"  {k:<22}{v:10.1f} ms")
    simd = [p for p in paths if p != "scalar"]
    for slow, fast in zip(simd, simd[1:]):
        for op in ("encode", "decode"):
            for t in threads:
                a, b = rows.get(f"{slow} {op} {t}T"), rows.get(f"{fast} {op} {t}T")
                if a and b:
                    r = statistics.median(x / y for x, y in zip(a, b))
                    out["speedups"][f"{fast} over {slow} {op} {t}T"] = r
                    print(f"  {fast} over {slow}, {op} {t}T: {r:.2f}x (median of per-image ratios)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
