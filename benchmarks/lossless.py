"""Lossless and near-lossless on Kodak (issue 23): lmcodec lossless=True and
max_error=1,2,4 beside PNG (optimize), WebP lossless (method 6), JPEG XL
lossless (imagecodecs, effort 7; skipped with a note if not installed) and
AVIF lossless=True (exactness checked), at 2 codec threads. Writes
docs/results/lossless.md, .json and .png (the PSNR-bpp plot from the lossy
curve in docs/results/kodak_rd.json to lossless).

    python benchmarks/lossless.py [--limit N] [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"
OUT = ROOT / "docs" / "results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import lmcodec
    from lmcodec.bench.images import load_images
    from lmcodec.bench.lossless import lossless_report, plot_lossless, run_lossless

    images = load_images(KODAK, limit=args.limit)
    t0 = time.time()
    res = run_lossless(images, threads=args.threads, repeat=args.repeat)
    lossy = None
    rd = OUT / "kodak_rd.json"
    if rd.exists():
        lossy = [p for p in json.loads(rd.read_text())["points"]["lmc"] if p.get("complete", True)]
    head = (f"# Lossless and near-lossless on Kodak\n\nMade by `python benchmarks/lossless.py` "
            f"(lmcodec {lmcodec.__version__}, {platform.machine()}, {time.strftime('%Y-%m-%d')}, "
            f"{time.time() - t0:.0f} s; a shared, noisy 2-core machine: compare ratios, not absolute times).\n\n")
    if args.no_write:
        print(head + lossless_report(res, lossy))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    plot = None
    try:
        plot_lossless(res, str(OUT / "lossless.png"), lossy)
        plot = "lossless.png"
    except ImportError as e:
        print(f"no plot: {e}", file=sys.stderr)
    (OUT / "lossless.json").write_text(json.dumps(res, indent=1))
    text = head + lossless_report(res, lossy, plot=plot)
    (OUT / "lossless.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
