"""The lmcodec command line.

    lmcodec encode IN -o OUT.lmc [-q 75] [-j N] [--method hyperprior|pca] [--no-rdo] [--max-bytes N] [-v]
    lmcodec decode IN.lmc -o OUT.png [-j N] [-v]
    lmcodec info FILE.lmc
    lmcodec demo [-o DIR]
    lmcodec bench [DIR] [--codecs ...] [--plot rd.png] [--report report.md]

Errors print one line on stderr and exit with status 1 (2 for bad usage).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from . import _api
from ._core import LmcError

SAMPLE = Path(__file__).resolve().parent / "data" / "sample.png"


def _load_image(path: str) -> "tuple[np.ndarray, dict]":
    from PIL import Image

    try:
        with Image.open(path) as im:
            meta = {k: im.info[k] for k in ("icc_profile", "exif", "xmp") if im.info.get(k)}
            im.load()
            arr = _api._to_array(im)
    except (OSError, SyntaxError) as e:
        raise LmcError(f"cannot read image {path}: {e}") from e
    return arr, meta


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def cmd_encode(args) -> int:
    arr, meta = _load_image(args.input)
    h, w = arr.shape[:2]
    t0 = time.perf_counter()
    data = _api.encode(arr, args.quality, threads=args.threads, method=args.method,
                       icc_profile=meta.get("icc_profile"), exif=meta.get("exif"), xmp=meta.get("xmp"),
                       rdo=not args.no_rdo, max_bytes=args.max_bytes)
    dt = time.perf_counter() - t0
    out = args.output or str(Path(args.input).with_suffix(".lmc"))
    Path(out).write_bytes(data)
    bpp = len(data) * 8 / (w * h)
    line = f"{args.input} -> {out}: {w}x{h}, {len(data)} bytes, {bpp:.4f} bpp, {w * h / dt / 1e6:.2f} MP/s"
    if args.max_bytes is not None:
        line += f", quality {_api.info(data, sections=False).quality:.2f}"
    if args.verbose:
        dec = _api.decode(data, threads=args.threads)
        line += f", PSNR {_psnr(arr, dec):.2f} dB"
    print(line)
    return 0


def cmd_decode(args) -> int:
    from PIL import Image

    data = Path(args.input).read_bytes()
    hdr = _api.info(data)
    t0 = time.perf_counter()
    arr = _api.decode(data, threads=args.threads)
    dt = time.perf_counter() - t0
    out = args.output or str(Path(args.input).with_suffix(".png"))
    im = Image.fromarray(arr)
    save_kw = {}
    if "icc_profile" in hdr.metadata:
        save_kw["icc_profile"] = hdr.metadata["icc_profile"]
    if "exif" in hdr.metadata:
        save_kw["exif"] = hdr.metadata["exif"]
    im.save(out, **save_kw)
    print(f"{args.input} -> {out}: {hdr.width}x{hdr.height} {hdr.mode}, {hdr.width * hdr.height / dt / 1e6:.2f} MP/s")
    return 0


def cmd_info(args) -> int:
    data = Path(args.input).read_bytes()
    i = _api.info(data)
    print(f"{args.input}: LMC v{i.version[0]}.{i.version[1]} {i.width}x{i.height} {i.mode}, quality {i.quality:g}, "
          f"codec {i.codec}, model {i.model_id}, {len(data)} bytes ({len(data) * 8 / (i.width * i.height):.4f} bpp)")
    for name, size in i.sections.items():
        print(f"  {name}: {size} bytes")
    return 0


def cmd_demo(args) -> int:
    if not SAMPLE.exists():
        raise LmcError(f"sample image missing: {SAMPLE}")
    arr, _ = _load_image(str(SAMPLE))
    outdir = Path(args.output)
    outdir.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    h, w = arr.shape[:2]
    mi = _api.model_info("hyperprior")
    print(f"lmcodec {__import__('lmcodec').__version__} demo: {SAMPLE.name} {w}x{h}; kernels: {_api.kernel_path()}; "
          f"model {mi.get('model_id', '?')[:12]} ({mi.get('train_steps', '?')} training steps)")
    print(f"{'method':<11}{'quality':>8}{'bytes':>9}{'bpp':>9}{'PSNR dB':>9}{'enc ms':>9}{'dec ms':>9}")
    for method, qualities in (("hyperprior", args.qualities), ("pca", args.qualities)):
        for q in qualities:
            t0 = time.perf_counter()
            data = _api.encode(arr, q, method=method)
            t1 = time.perf_counter()
            dec = _api.decode(data)
            t2 = time.perf_counter()
            stem = outdir / f"sample_{method}_q{q:g}"
            Path(f"{stem}.lmc").write_bytes(data)
            Image.fromarray(dec).save(f"{stem}.png")
            print(f"{method:<11}{q:>8g}{len(data):>9d}{len(data) * 8 / (w * h):>9.4f}{_psnr(arr, dec):>9.2f}"
                  f"{(t1 - t0) * 1e3:>9.1f}{(t2 - t1) * 1e3:>9.1f}")
    print(f"wrote .lmc files and decoded PNGs to {outdir}/")
    return 0


def cmd_bench(argv: List[str]) -> int:
    from . import bench

    return bench.main_bench(argv)


def _version_line() -> str:
    """Version, shipped model and kernel paths: what a bug report needs."""
    import lmcodec

    try:
        model = lmcodec.model_info()["model_id"][:16]
    except Exception as e:  # a damaged install still prints its version
        model = f"unavailable ({e})"
    return (f"lmcodec {lmcodec.__version__} (model {model}; kernels {lmcodec.kernel_path()}, "
            f"this CPU runs: {', '.join(lmcodec.kernel_paths())})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lmcodec", description="lmcodec -- a learned image codec",
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # keeps --version on one line
    p.add_argument("--version", action="version", version=_version_line())
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("encode", help="encode an image to .lmc")
    e.add_argument("input")
    e.add_argument("-o", "--output")
    e.add_argument("-q", "--quality", type=float, default=75.0)
    e.add_argument("-j", "--threads", type=int, default=None)
    e.add_argument("--method", choices=sorted(_api.CODECS), default="hyperprior")
    e.add_argument("--no-rdo", action="store_true", help="round latents to nearest (no rate-distortion "
                   "optimised quantisation)")
    e.add_argument("--max-bytes", type=int, default=None,
                   help="size budget: the highest quality (at most -q) whose file fits")
    e.add_argument("-v", "--verbose", action="store_true", help="also decode and report PSNR")
    d = sub.add_parser("decode", help="decode .lmc to PNG (or any format Pillow writes)")
    d.add_argument("input")
    d.add_argument("-o", "--output")
    d.add_argument("-j", "--threads", type=int, default=None)
    d.add_argument("-v", "--verbose", action="store_true")
    i = sub.add_parser("info", help="show a .lmc file's header and sections")
    i.add_argument("input")
    m = sub.add_parser("demo", help="encode the packaged sample at a few qualities")
    m.add_argument("-o", "--output", default="lmcodec-demo")
    m.add_argument("--qualities", type=float, nargs="+", default=[25.0, 50.0, 75.0, 95.0])
    sub.add_parser("bench", help="rate-distortion benchmark against JPEG, WebP, AVIF, JPEG XL (see lmcodec bench -h)",
                   add_help=False)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        try:
            return cmd_bench(argv[1:])
        except LmcError as e:
            print(f"lmcodec: error: {e}", file=sys.stderr)
            return 1
    args = build_parser().parse_args(argv)
    try:
        return {"encode": cmd_encode, "decode": cmd_decode, "info": cmd_info, "demo": cmd_demo}[args.command](args)
    except LmcError as e:
        print(f"lmcodec: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"lmcodec: error: {e.strerror or e}: {getattr(e, 'filename', '') or ''}".rstrip(": "), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
