"""The lmcodec command line (``lmcodec ...`` or ``python -m lmcodec ...``).

Rules it keeps (README, "Command line"):

* A derived output name (``photo.png`` -> ``photo.lmc`` beside it, or the
  same name inside an ``-o FOLDER/``) never overwrites an existing file:
  the command refuses, naming the file and ``-f/--force``. An explicit
  ``-o PATH`` may overwrite, as cwebp/dwebp do. No command ever writes a file
  it reads.
* Every output is written atomically (a temporary file in the same folder,
  renamed when complete): an interrupted or failed run leaves no half-written
  file and never damages an existing one.
* ``-`` as input reads standard input; ``-o -`` writes the stream (encode)
  or a PNG (decode) to standard output, byte-identical to a file. Status,
  progress and verbose lines go to standard error.
* Every failure prints one line, ``lmcodec: error: ...``, on standard error
  and exits with status 1 (2 for bad usage, 130 when interrupted); ``--debug``
  shows the traceback instead.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from . import _api
from ._core import LmcError
from ._files import same_file, write_atomic
from ._imageio import STDIO, decode_format, load_image, save_image

DEFAULT_QUALITY = 75.0
FORCE_HINT = " (use -f/--force to overwrite it, or -o to name another output)"

EPILOG = """\
examples:
  lmcodec encode photo.png                      writes photo.lmc beside it (never overwrites)
  lmcodec encode photo.png -o small.lmc -q 40   explicit output (may overwrite), quality 40
  lmcodec encode *.png -o lmc/ --jobs 2         a batch into the folder lmc/ (created if missing)
  lmcodec encode photo.jpg --max-bytes 50000    the best quality whose file fits in 50,000 bytes
  cat photo.png | lmcodec encode - -o - > x.lmc pipes: '-' reads stdin, '-o -' writes stdout
  lmcodec decode photo.lmc                      writes photo.png (refuses if it exists; -f to allow)
  lmcodec decode photo.lmc -o photo.webp        any format Pillow writes, from the extension
  lmcodec info photo.lmc                        header, sections and metadata
  lmcodec encode photo.png --roi face.png       a mask (white = important) gets the bits the rest gives up
  lmcodec explain photo.png -o report/          where the bits go: bit maps, channels, error (index.html)
  lmcodec demo                                  lmcodec beside JPEG, WebP and AVIF on a photo
"""


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# ---------------------------------------------------------------- messages


class _Console:
    """Where status lines go: standard error, quiet when asked, through tqdm when a bar is on screen."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None

    def say(self, line: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    @staticmethod
    def error(line: str) -> None:
        print(f"lmcodec: error: {line}", file=sys.stderr)

    def progress_on(self) -> bool:
        return not self.quiet and sys.stderr.isatty()


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"lmcodec: warning: {message}", file=sys.stderr)


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a comfort, not a requirement
        return None
    return tqdm


class _StripProgress:
    """Progress of one long job, per strip of the image, from the codec's own reports: a bar on a terminal once
    the job has run about a second (short jobs never flash one). Also a callable for encode/decode(progress=)."""

    def __init__(self, console: _Console, label: str, delay: float = 1.0):
        self.console, self.label, self.delay = console, label, delay
        self.t0 = time.perf_counter()
        self.bar = None
        self.on = console.progress_on() and _tqdm() is not None

    def __call__(self, done: int, total: int) -> bool:
        if not self.on:
            return False
        if self.bar is None:
            if time.perf_counter() - self.t0 < self.delay or done >= total:
                return False
            self.bar = _tqdm()(total=total, desc=self.label, unit="strip", file=sys.stderr, leave=False)
            self.console.bar = self.bar
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()
        return False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
            self.console.bar = None
        return False


# ---------------------------------------------------------------- reading


def _read_input(name: str) -> bytes:
    if name == STDIO:
        return sys.stdin.buffer.read()
    return Path(name).read_bytes()


# ---------------------------------------------------------------- writing


def _emit(output: str, overwrite: bool, writer) -> None:
    if output == STDIO:
        buf = io.BytesIO()
        writer(buf)
        sys.stdout.buffer.write(buf.getvalue())
        sys.stdout.buffer.flush()
    else:
        write_atomic(output, writer, overwrite=overwrite, hint=FORCE_HINT)


# ---------------------------------------------------------------- planning


def plan_outputs(inputs: List[str], output: Optional[str], ext: str, force: bool) -> List[tuple]:
    """[(input, output, may_overwrite)] for the inputs, checked before any work is done."""
    if STDIO in inputs and len(inputs) > 1:
        raise LmcError("'-' (standard input) can only be the single input")
    folder = None
    if output is not None and output != STDIO:
        if output.endswith(("/", os.sep)) or os.path.isdir(output):
            folder = Path(output)
        elif len(inputs) > 1:
            raise LmcError(f"with several inputs, -o must be a folder (end it with '/'); {output} is not one")
    elif output == STDIO and len(inputs) > 1:
        raise LmcError("'-o -' (standard output) takes a single input")
    jobs = []
    for inp in inputs:
        if inp != STDIO and not os.path.exists(inp):
            raise LmcError(f"{inp}: no such file")
        if inp != STDIO and os.path.isdir(inp):
            raise LmcError(f"{inp} is a folder; name the image files (e.g. {inp.rstrip('/')}/*.png)")
        if folder is not None:
            if inp == STDIO:
                raise LmcError("standard input has no name to use inside a folder: give -o FILE or -o -")
            jobs.append((inp, str(folder / (Path(inp).stem + ext)), force))
        elif output is not None:
            jobs.append((inp, output, True))  # an explicit output may overwrite, as cwebp/dwebp do
        elif inp == STDIO:
            raise LmcError("reading standard input needs -o FILE (or -o - for standard output)")
        else:
            jobs.append((inp, str(Path(inp).with_suffix(ext)), force))
    seen: Dict[str, str] = {}
    for inp, out, overwrite in jobs:
        if out == STDIO:
            continue
        key = os.path.realpath(out)
        if key in seen:
            raise LmcError(f"{seen[key]} and {inp} would both be written to {out}")
        seen[key] = inp
        for other in inputs:
            if other != STDIO and os.path.exists(out) and same_file(other, out):
                raise LmcError(f"{out} is also an input: lmcodec never writes a file it reads")
        if not overwrite and os.path.lexists(out):
            raise LmcError(f"{out} exists; not overwritten{FORCE_HINT}")
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LmcError(f"cannot create the output folder {folder}: {e.strerror or e}") from e
    return jobs


# ---------------------------------------------------------------- jobs (run in worker processes too)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    from .metrics import psnr

    return float(psnr(a, b))


def load_roi(roi: Optional[str]) -> Any:
    """--roi: None, "auto", or a mask picture (white = important) as a 2-D array."""
    if roi is None or roi == "auto":
        return roi
    arr, _ = load_image(_read_input(roi), roi)
    return arr if arr.ndim == 2 else arr[..., : min(3, arr.shape[2])].mean(axis=2)


def encode_job(job: Dict[str, Any]) -> Dict[str, Any]:
    t0 = time.perf_counter()
    data_in = job["data"] if job.get("data") is not None else _read_input(job["input"])
    arr, meta = load_image(data_in, job["input"])
    h, w = arr.shape[:2]
    data = _api.encode(arr, job["quality"], threads=job["threads"], method=job["method"],
                       icc_profile=meta.get("icc_profile"), exif=meta.get("exif"), xmp=meta.get("xmp"),
                       rdo=job["rdo"], max_bytes=job["max_bytes"], lossless=job["lossless"],
                       max_error=job["max_error"], progress=job.get("progress"), roi=load_roi(job.get("roi")))
    dt = time.perf_counter() - t0
    _emit(job["output"], job["overwrite"], lambda f: f.write(data))
    res = dict(input=job["input"], output=job["output"], width=w, height=h, bytes_in=len(data_in),
               bytes_out=len(data), seconds=dt, quality=None, psnr=None)
    if job["max_bytes"] is not None:
        res["quality"] = _api.info(data, sections=False).quality
    if job["verbose"]:
        res["psnr"] = _psnr(arr, _api.decode(data, threads=job["threads"]))
    return res


def decode_job(job: Dict[str, Any]) -> Dict[str, Any]:
    data = job["data"] if job.get("data") is not None else _read_input(job["input"])
    hdr = _api.info(data)
    t0 = time.perf_counter()
    arr = _api.decode(data, threads=job["threads"], progress=job.get("progress"))
    dt = time.perf_counter() - t0
    fmt = decode_format(job["output"])
    _emit(job["output"], job["overwrite"], lambda f: save_image(arr, hdr.metadata, fmt, f))
    return dict(input=job["input"], output=job["output"], width=hdr.width, height=hdr.height, mode=hdr.mode,
                bytes_in=len(data), bytes_out=None, seconds=dt, quality=hdr.quality, codec=hdr.codec,
                model_id=hdr.model_id)


def _guarded(fn, job):
    """Run a job, turning an expected failure into a one-line message (for batches)."""
    try:
        return fn(job)
    except LmcError as e:
        return {"input": job["input"], "error": str(e)}
    except OSError as e:
        return {"input": job["input"], "error": _os_message(e)}


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and cancels the pool
    warnings.showwarning = _one_line_warning


def _os_message(e: OSError) -> str:
    name = getattr(e, "filename", None)
    text = e.strerror or str(e)
    return f"{name}: {text}" if name else text


# ---------------------------------------------------------------- commands


def _status_line(kind: str, r: Dict[str, Any], verbose: bool) -> str:
    px = r["width"] * r["height"]
    mps = px / r["seconds"] / 1e6 if r["seconds"] > 0 else float("inf")
    out = "(stdout)" if r["output"] == STDIO else r["output"]
    src = "(stdin)" if r["input"] == STDIO else r["input"]
    if kind == "encode":
        line = (f"{src} -> {out}: {r['width']}x{r['height']}, {r['bytes_out']} bytes, "
                f"{r['bytes_out'] * 8 / px:.4f} bpp, {mps:.2f} MP/s")
        if r.get("quality") is not None:
            line += f", quality {r['quality']:.2f}"
        if r.get("psnr") is not None:
            line += f", PSNR {r['psnr']:.2f} dB"
        return line
    line = f"{src} -> {out}: {r['width']}x{r['height']} {r['mode']}, {mps:.2f} MP/s"
    if verbose:
        line += (f", {r['bytes_in']} bytes, {r['bytes_in'] * 8 / px:.4f} bpp, quality {r['quality']:g}, "
                 f"codec {r['codec']}, model {r['model_id'][:12]}")
    return line


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _run_jobs(kind: str, args, console: _Console) -> int:
    ext = ".lmc" if kind == "encode" else "." + args.format.lower().lstrip(".")
    if kind == "decode":
        decode_format("x" + ext)  # an unknown --format fails before any work
    if args.output == STDIO and sys.stdout.isatty():
        raise LmcError("not writing binary data to a terminal: redirect standard output (-o - > FILE)")
    plan = plan_outputs(args.inputs, args.output, ext, args.force)
    if kind == "decode":
        for _, out, _ in plan:
            decode_format(out)
    n = len(plan)
    jobs_n = max(1, min(args.jobs or _cores(), n))
    threads = args.threads
    if threads is None and jobs_n > 1:
        threads = max(1, _cores() // jobs_n)
    base = dict(threads=threads, verbose=args.verbose)
    if kind == "encode":
        base.update(quality=args.quality, method=args.method, rdo=not args.no_rdo, max_bytes=args.max_bytes,
                    roi=args.roi, lossless=args.lossless, max_error=args.max_error)
    fn = encode_job if kind == "encode" else decode_job
    jobs = []
    for inp, out, overwrite in plan:
        job = dict(base, input=inp, output=out, overwrite=overwrite)
        if inp == STDIO:
            job["data"] = _read_input(STDIO)
        jobs.append(job)

    t0 = time.perf_counter()
    results: List[Dict[str, Any]] = []
    tqdm = _tqdm()
    if n == 1:
        label = f"{kind} {'(stdin)' if jobs[0]['input'] == STDIO else Path(jobs[0]['input']).name}"
        with _StripProgress(console, label) as bar:
            jobs[0]["progress"] = bar
            results.append(fn(jobs[0]))  # a single job reports its error as the command's error
    else:
        bar = None
        if console.progress_on() and tqdm is not None:
            bar = tqdm(total=n, unit="img", desc=kind, file=sys.stderr, leave=False)
            console.bar = bar
        try:
            if jobs_n == 1:
                for job in jobs:
                    results.append(_guarded(fn, job))
                    _report(kind, results[-1], args, console, n)
                    if bar is not None:
                        bar.update(1)
            else:
                ctx = multiprocessing.get_context("spawn")
                with cf.ProcessPoolExecutor(max_workers=jobs_n, mp_context=ctx, initializer=_worker_init) as pool:
                    futures = [pool.submit(_guarded, fn, job) for job in jobs]
                    try:
                        for fut in cf.as_completed(futures):
                            results.append(fut.result())
                            _report(kind, results[-1], args, console, n)
                            if bar is not None:
                                bar.update(1)
                    except BaseException:
                        for fut in futures:
                            fut.cancel()
                        raise
        finally:
            if bar is not None:
                bar.close()
                console.bar = None
    dt = time.perf_counter() - t0
    if n == 1:
        _report(kind, results[0], args, console, n)
        return 0
    ok = [r for r in results if "error" not in r]
    failed = n - len(ok)
    px = sum(r["width"] * r["height"] for r in ok)
    bytes_in = sum(r["bytes_in"] for r in ok)
    line = f"{kind}d {len(ok)} of {n} files in {dt:.2f} s"
    if kind == "encode" and ok:
        bytes_out = sum(r["bytes_out"] for r in ok)
        line += f": {_human(bytes_in)} -> {_human(bytes_out)}, {bytes_out * 8 / px:.4f} bpp"
    elif ok:
        line += f": {_human(bytes_in)} of streams, {px / 1e6:.2f} MP"
    if failed:
        line += f"; {failed} failed"
    console.say(line)
    return 1 if failed else 0


def _report(kind: str, r: Dict[str, Any], args, console: _Console, n: int) -> None:
    if "error" in r:
        msg = r["error"]
        if not msg.startswith(r["input"]):
            msg = f"{r['input']}: {msg}"
        if console.bar is not None:
            console.bar.write(f"lmcodec: error: {msg}", file=sys.stderr)
        else:
            console.error(msg)
        return
    if n == 1 or args.verbose:
        console.say(_status_line(kind, r, args.verbose))


def cmd_encode(args, console: _Console) -> int:
    if args.max_error is not None and args.lossless:
        raise LmcError("give either --lossless or --max-error K, not both")
    if (args.lossless or args.max_error is not None) and args.max_bytes is not None:
        raise LmcError("--max-bytes cannot be combined with --lossless / --max-error (their size is not adjustable)")
    return _run_jobs("encode", args, console)


def cmd_decode(args, console: _Console) -> int:
    return _run_jobs("decode", args, console)


def cmd_info(args, console: _Console) -> int:
    status = 0
    for name in args.inputs:
        try:
            data = _read_input(name)
            i = _api.info(data)
        except (LmcError, OSError) as e:
            if len(args.inputs) == 1:
                raise
            console.error(f"{name}: {e if isinstance(e, LmcError) else _os_message(e)}")
            status = 1
            continue
        mode = (f"quality {i.quality:g}" if i.coding == "lossy" else "lossless" if i.coding == "lossless"
                else f"near-lossless, max error {i.max_error}")
        print(f"{name}: LMC v{i.version[0]}.{i.version[1]} {i.width}x{i.height} {i.mode}, {mode}, "
              f"codec {i.codec}, model {i.model_id}, {len(data)} bytes "
              f"({len(data) * 8 / (i.width * i.height):.4f} bpp)")
        for sec, size in i.sections.items():
            print(f"  {sec}: {size} bytes")
    return status


def cmd_demo(args, console: _Console) -> int:
    from . import _demo

    return _demo.run(args)


def cmd_explain(args, console: _Console) -> int:
    from ._explain_report import write_report
    from .explain import explain

    out = Path(args.output)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not args.force)):
        raise LmcError(f"{out} exists and is not an empty folder" + FORCE_HINT)
    data = _read_input(args.input)
    if _api.check(data):
        source = load_image(_read_input(args.source), args.source)[0] if args.source else None
        ex = explain(data, source=source, threads=args.threads)
    else:
        if args.source:
            raise LmcError("--source is for an .lmc input")
        arr, _ = load_image(data, args.input)
        roi = load_roi(args.roi)
        ex = explain(arr, args.quality, threads=args.threads, **({"roi": roi} if roi is not None else {}))
    index = write_report(ex, out, Path(args.input).name)
    console.say(f"{args.input}: {len(ex.stream)} bytes, {ex.bpp:.4f} bpp -> {index}")
    return 0


def _version_line() -> str:
    """Version, shipped model and kernel paths: what a bug report needs."""
    import lmcodec

    try:
        model = lmcodec.model_info()["model_id"][:16]
    except Exception as e:  # a damaged install still prints its version
        model = f"unavailable ({e})"
    return (f"lmcodec {lmcodec.__version__} (model {model}; kernels {lmcodec.kernel_path()}, "
            f"this CPU runs: {', '.join(lmcodec.kernel_paths())})")


def _number_in(kind: type, lo: float, hi: float):
    """An argparse type: a number of `kind` in lo..hi (inclusive), with a one-line message otherwise."""
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not lo <= v <= hi:
            span = f"at least {lo:g}" if hi == float("inf") else f"in {lo:g}..{hi:g}"
            raise argparse.ArgumentTypeError(f"{text} is not {span}")
        return v

    return parse


_positive_int = _number_in(int, 1, float("inf"))
_quality = _number_in(float, 1.0, 100.0)
_threads_arg = _number_in(int, 0, 1024)


def _add_io(p: argparse.ArgumentParser, what: str, ext: str) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help=f"{what} file(s); '-' reads standard input")
    p.add_argument("-o", "--output", metavar="PATH",
                   help=f"output file, or a folder (ending in '/', created if missing) for several inputs; "
                        f"'-' writes standard output. Default: the input's name with {ext}, beside it, "
                        "never overwriting an existing file")
    p.add_argument("-f", "--force", action="store_true", help="let derived output names overwrite existing files")
    p.add_argument("-j", "--threads", type=_threads_arg, default=None, metavar="N",
                   help="threads per image, 0..1024 (default: one per core; in a batch, cores / jobs)")
    p.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                   help=f"images coded at once in a batch, by a process pool (default: cores = {_cores()})")
    p.add_argument("--quiet", action="store_true", help="no status, progress or summary lines (errors still show)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="more detail per file" + (" (also decodes and reports PSNR against the 8-bit input)"
                                                  if ext == ".lmc" else " (size, bpp, quality, model)"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lmcodec", description="lmcodec -- a learned image codec",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=_version_line())
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    e = sub.add_parser("encode", help="encode images to .lmc", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Encode images (any format Pillow reads) to .lmc.")
    _add_io(e, "image", ".lmc")
    e.add_argument("-q", "--quality", type=_quality, default=DEFAULT_QUALITY, metavar="Q",
                   help=f"quality 1..100, continuous (default {DEFAULT_QUALITY:g})")
    e.add_argument("--method", choices=sorted(_api.CODECS), default="hyperprior",
                   help="hyperprior: the learned codec (default); pca: the linear baseline")
    e.add_argument("--no-rdo", action="store_true", help="round latents to nearest instead of the rate-distortion "
                   "optimised quantiser (larger files; default: RDO on)")
    e.add_argument("--max-bytes", type=_positive_int, default=None, metavar="N",
                   help="size budget in bytes: the highest quality (at most -q) whose file fits (default: none)")
    e.add_argument("--roi", default=None, metavar="MASK|auto",
                   help="region of interest: a mask picture (white = important, any size) or 'auto' (more quality "
                        "where the image is smooth, measured to raise MS-SSIM); the ROI gets quality the rest "
                        "gives up (hyperprior)")
    e.add_argument("--lossless", action="store_true",
                   help="exact coding: every sample (alpha included) decodes to its input value; -q is ignored")
    e.add_argument("--max-error", type=_number_in(int, 1, _api.MAX_ERROR_LIMIT), default=None, metavar="K",
                   help="near-lossless: every sample decodes within K of its input (1..255; alpha exact); "
                        "-q is ignored")
    d = sub.add_parser("decode", help="decode .lmc to PNG (or any format Pillow writes)", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Decode .lmc files to pictures; the format follows the output's extension.")
    _add_io(d, ".lmc", ".png")
    d.add_argument("--format", default="png", metavar="EXT",
                   help="picture format for derived names and folder outputs (default png)")
    i = sub.add_parser("info", help="show .lmc headers and sections")
    i.add_argument("inputs", nargs="+", metavar="INPUT", help=".lmc file(s); '-' reads standard input")
    m = sub.add_parser("demo", help="lmcodec beside JPEG, WebP and AVIF at the same file size, on a packaged photo")
    m.add_argument("-o", "--output", default="lmcodec-demo", metavar="DIR",
                   help="folder for the files and the side-by-side picture (default lmcodec-demo)")
    m.add_argument("-q", "--quality", type=_quality, default=40.0, metavar="Q",
                   help="lmcodec quality; the others are matched to its file size (default 40)")
    m.add_argument("--image", default=None, metavar="FILE", help="use this picture instead of the packaged photo")
    m.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    x = sub.add_parser("explain", help="where the bits go: bit maps, channel report, error map (HTML + PNG)",
                       description="Encode an image (or read an .lmc) and write a report of where its bits go.")
    x.add_argument("input", metavar="INPUT", help="an image (encoded at -q first) or an .lmc stream")
    x.add_argument("-o", "--output", required=True, metavar="DIR", help="report folder (index.html, README.md, PNGs)")
    x.add_argument("-q", "--quality", type=_quality, default=DEFAULT_QUALITY, metavar="Q",
                   help=f"quality for an image input (default {DEFAULT_QUALITY:g})")
    x.add_argument("--roi", default=None, metavar="MASK|auto", help="encode with a region of interest (see encode)")
    x.add_argument("--source", default=None, metavar="IMAGE", help="for an .lmc input: the original, for the error map")
    x.add_argument("-f", "--force", action="store_true", help="write into a folder that already has files")
    x.add_argument("-j", "--threads", type=_threads_arg, default=None, metavar="N", help="threads (default: one per core)")
    x.add_argument("--quiet", action="store_true", help="no status line")
    sub.add_parser("bench", help="rate-distortion benchmark against JPEG, WebP, AVIF, JPEG XL (see lmcodec bench -h)",
                   add_help=False)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    old_showwarning = warnings.showwarning
    warnings.showwarning = _one_line_warning
    old_term = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM unwinds like Ctrl-C, so temporary files are removed and no half-written output is left
        old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if argv and argv[0] == "bench":
            from . import bench

            return bench.main_bench(argv[1:])
        args = build_parser().parse_args(argv)
        console = _Console(getattr(args, "quiet", False))
        return {"encode": cmd_encode, "decode": cmd_decode, "info": cmd_info,
                "demo": cmd_demo, "explain": cmd_explain}[args.command](args, console)
    except KeyboardInterrupt:
        if debug:
            raise
        _Console.error("interrupted")
        return 130
    except SystemExit:
        raise
    except LmcError as e:
        if debug:
            raise
        _Console.error(str(e))
        return 1
    except OSError as e:
        if debug:
            raise
        _Console.error(_os_message(e))
        return 1
    except Exception as e:  # noqa: BLE001 - the promise is one line, never a traceback
        if debug:
            raise
        _Console.error(f"{type(e).__name__}: {e} (run with --debug for the traceback; please report it)")
        return 1
    finally:
        warnings.showwarning = old_showwarning
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
