"""Lossless and near-lossless on Kodak (issue 23): lmcodec lossless=True and
max_error=1,2,4 beside PNG (optimize), WebP lossless (method 6), JPEG XL
lossless (imagecodecs, effort 7; skipped with a note if not installed) and
AVIF lossless=True (exactness checked), at 2 codec threads. Writes
docs/results/lossless.md, .json and .png (the PSNR-bpp plot from the lossy
curve in docs/results/kodak_rd.json to lossless).

    python benchmarks/lossless.py [--limit N] [--repeat 3] [--no-write]
    python benchmarks/lossless.py --from-json   # re-render .md/.png from lossless.json
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
    ap.add_argument("--from-json", action="store_true", help="no measuring: re-render from docs/results/lossless.json")
    args = ap.parse_args()
    import lmcodec
    from lmcodec.bench.images import load_images
    from lmcodec.bench.lossless import lossless_report, plot_lossless, run_lossless

    t0 = time.time()
    if args.from_json:
        res = json.loads((OUT / "lossless.json").read_text())
        res["near"] = {int(k): v for k, v in res["near"].items()}
    else:
        res = run_lossless(load_images(KODAK, limit=args.limit), threads=args.threads, repeat=args.repeat)
        res["made"] = dict(version=lmcodec.__version__, machine=platform.machine(), date=time.strftime("%Y-%m-%d"),
                           seconds=round(time.time() - t0))
    made = res.get("made", {})
    lossy = None
    rd = OUT / "kodak_rd.json"
    if rd.exists():
        lossy = [p for p in json.loads(rd.read_text())["points"]["lmc"] if p.get("complete", True)]
    head = (f"# Lossless and near-lossless on Kodak\n\nMade by `python benchmarks/lossless.py` "
            f"(lmcodec {made.get('version')}, {made.get('machine')}, {made.get('date')}, "
            f"{made.get('seconds')} s; a shared, noisy 2-core machine with other jobs running: compare ratios "
            f"within this run, not absolute times).\n\n")
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
