"""``lmcodec bench``: the command line of the benchmark."""

from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Optional

from .bd import load_reference
from .codecs import _DEFAULT_CODECS, _parse_codecs
from .images import load_images
from .measure import run_bench
from .plot import plot_rd
from .report import summary_text, write_json, write_report


def _parse_quality_args(values: Optional[List[str]]):
    if not values:
        return None
    common: Optional[List[float]] = None
    per: Dict[str, List[float]] = {}
    for v in values:
        for part in v.split(";"):
            part = part.strip()
            if not part:
                continue
            if ":" in part or "=" in part:
                k, _, qs = part.replace("=", ":").partition(":")
                per[k.strip()] = [float(x) for x in qs.split(",") if x.strip()]
            else:
                common = [float(x) for x in part.split(",") if x.strip()]
    if per and common is not None:
        raise ValueError("--qualities: give either one list for all codecs or CODEC:LIST entries")
    return per or common


def _main_lossless(args) -> int:
    import json

    from .lossless import lossless_report, plot_lossless, run_lossless

    try:
        images = load_images(args.dir, limit=args.limit)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"lmcodec bench: error: {e}", file=sys.stderr)
        return 2
    res = run_lossless(images, threads=args.codec_threads or 2, repeat=args.repeat, progress=not args.quiet)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    plot = None
    if args.plot:
        try:
            plot_lossless(res, args.plot)
            plot = args.plot
        except ImportError as e:
            print(f"lmcodec bench: cannot plot: {e}", file=sys.stderr)
    text = lossless_report(res, plot=plot)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    print(text)
    return 0


def main_bench(argv: Optional[List[str]] = None) -> int:
    """``lmcodec bench ...``: parse ``argv`` (without the sub-command), run, write outputs."""
    ap = argparse.ArgumentParser(
        prog="lmcodec bench",
        description="Rate-distortion benchmark of lmcodec against JPEG, WebP, AVIF, "
                    "JPEG XL and JPEG 2000.")
    ap.add_argument("dir", nargs="?", default=None,
                    help="directory of PNG/JPEG/WebP/PPM images, or one image "
                         "(default: the packaged sample image)")
    ap.add_argument("--codecs", default=",".join(_DEFAULT_CODECS),
                    help="comma-separated list (default: %(default)s)")
    ap.add_argument("--qualities", action="append", metavar="LIST",
                    help="'Q,Q,...' for every codec or 'CODEC:Q,Q,...' (repeatable, or "
                         "';'-separated); default grids span ~0.1-2 bpp. For jpeg2000 the "
                         "value is the compression ratio")
    ap.add_argument("--plot", metavar="PNG", help="write PSNR/MS-SSIM vs bpp plots (matplotlib)")
    ap.add_argument("--report", metavar="MD", help="write a Markdown report")
    ap.add_argument("--json", metavar="JSON", help="write all results (per-image rows too)")
    ap.add_argument("--reference", metavar="JSON",
                    help="published RD curves ({'curves':[{name,bpp,psnr,msssim}]}) to "
                         "overlay and compare")
    ap.add_argument("--limit", type=int, metavar="N", help="use only the first N images")
    ap.add_argument("-j", "--threads", type=int, default=1, metavar="N",
                    help="worker threads running jobs in parallel (default 1; >1 "
                         "distorts timings)")
    ap.add_argument("--codec-threads", type=int, default=None, metavar="N",
                    help="threads inside AVIF/JXL/lmcodec (default: library default)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="time each encode/decode N times, keep the fastest (default 1)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    ap.add_argument("--lossless", action="store_true",
                    help="instead of the RD curves: lossless rows (lmcodec lossless=True, PNG, WebP, JPEG XL, "
                         "AVIF; bpp, encode/decode time, exactness checked) and lmcodec's near-lossless points "
                         "max_error=1,2,4 (--codec-threads, default 2)")
    args = ap.parse_args(argv)
    if args.lossless:
        return _main_lossless(args)

    try:
        qualities = _parse_quality_args(args.qualities)
        codecs = _parse_codecs(args.codecs)
        if args.limit is not None and args.limit < 1:
            raise ValueError("--limit must be >= 1")
        if args.threads < 1 or args.repeat < 1:
            raise ValueError("-j and --repeat must be >= 1")
        ref = load_reference(args.reference) if args.reference else None
        images = load_images(args.dir, limit=args.limit)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"lmcodec bench: error: {e}", file=sys.stderr)
        return 2

    result = run_bench(images, codecs, qualities, threads=args.threads,
                       progress=not args.quiet, codec_threads=args.codec_threads,
                       repeat=args.repeat, reference=ref)
    rc = 0
    if not any(result["points"].values()):
        print("lmcodec bench: error: no codec produced results", file=sys.stderr)
        rc = 1
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    plot_path = None
    if args.plot:
        try:
            plot_rd(result, args.plot, reference=ref)
            plot_path = args.plot
            print(f"wrote {args.plot}", file=sys.stderr)
        except ImportError as e:
            print(f"lmcodec bench: cannot plot: {e}", file=sys.stderr)
            rc = rc or 1
    if args.report:
        write_report(result, args.report, plot=plot_path)
        print(f"wrote {args.report}", file=sys.stderr)
    print(summary_text(result))
    return rc

