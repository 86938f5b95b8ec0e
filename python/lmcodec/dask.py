"""Batch transcoding on Dask: encode or decode many files on a cluster.

    from distributed import Client
    import lmcodec.dask as ld

    client = Client("tcp://scheduler:8786")          # or LocalCluster(), or none: dask's default scheduler
    report = ld.encode_paths(["s3://bucket/in/a.png", ...], "s3://bucket/lmc/", quality=60,
                             storage_options={"anon": False})
    ld.decode_paths(["lmc/a.lmc", ...], "png/")

Each input is read with fsspec (local paths, ``s3://``, ``gs://``, ``http(s)://``
... whatever fsspec and its plugins reach from the workers), coded on a worker
with lmcodec's own encoder (the same bytes as ``lmcodec.encode`` in one
process: the codec is deterministic on every CPU and thread count), and
written beside the others in the output folder under its own name with the
new extension. Local outputs are written atomically and, as on the command
line, an existing file is never overwritten unless ``overwrite=True``; object
stores replace whole objects, so ``overwrite=False`` checks existence first.

The work is a ``dask.bag`` (one task per file); with a ``distributed.Client``
active, it runs on that cluster. Requires ``pip install "dask[bag]"`` (and
``distributed`` for a cluster); the rest of lmcodec never imports dask.
Each result is a dict (input, output, width, height, bytes_in, bytes_out,
seconds) or, for a file that failed, (input, error) -- one bad file does not
stop the batch.
"""

from __future__ import annotations

import io
import posixpath
import time
from typing import Any, Dict, Iterable, List, Optional

from . import _api
from ._core import LmcError


def _require_dask():
    try:
        import dask.bag as db
        import fsspec
    except ImportError as e:  # pragma: no cover - exercised only without dask
        raise LmcError('lmcodec.dask needs dask: pip install "dask[bag]" (and distributed for a cluster)') from e
    return db, fsspec


def _output_name(path: str, out_dir: str, ext: str) -> str:
    base = posixpath.basename(path.rstrip("/"))
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return out_dir.rstrip("/") + "/" + stem + ext


def _write(fsspec, url: str, data: bytes, overwrite: bool, storage_options: Dict[str, Any]) -> None:
    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "file" in protocols or "local" in protocols:
        from ._files import write_atomic

        write_atomic(path, lambda f: f.write(data), overwrite=overwrite, hint=" (pass overwrite=True to replace it)")
        return
    if not overwrite and fs.exists(path):
        raise LmcError(f"{url} exists; not overwritten (pass overwrite=True to replace it)")
    with fs.open(path, "wb") as f:
        f.write(data)


def _encode_task(path: str, out_dir: str, quality: float, method: str, rdo: bool, threads: Optional[int],
                 overwrite: bool, storage_options: Dict[str, Any]) -> Dict[str, Any]:
    _, fsspec = _require_dask()
    from ._imageio import load_image

    t0 = time.perf_counter()
    try:
        with fsspec.open(path, "rb", **storage_options) as f:
            raw = f.read()
        arr, meta = load_image(raw, path)
        data = _api.encode(arr, quality, method=method, rdo=rdo, threads=threads, icc_profile=meta.get("icc_profile"),
                           exif=meta.get("exif"), xmp=meta.get("xmp"))
        out = _output_name(path, out_dir, ".lmc")
        _write(fsspec, out, data, overwrite, storage_options)
    except (LmcError, OSError) as e:
        return {"input": path, "error": str(e)}
    return {"input": path, "output": out, "width": int(arr.shape[1]), "height": int(arr.shape[0]),
            "bytes_in": len(raw), "bytes_out": len(data), "seconds": time.perf_counter() - t0}


def _decode_task(path: str, out_dir: str, fmt: str, threads: Optional[int], overwrite: bool,
                 storage_options: Dict[str, Any]) -> Dict[str, Any]:
    _, fsspec = _require_dask()
    from ._imageio import decode_format, save_image

    t0 = time.perf_counter()
    try:
        with fsspec.open(path, "rb", **storage_options) as f:
            raw = f.read()
        hdr = _api.info(raw)
        arr = _api.decode(raw, threads=threads)
        buf = io.BytesIO()
        save_image(arr, hdr.metadata, decode_format("x." + fmt.lower()), buf)
        out = _output_name(path, out_dir, "." + fmt.lower())
        _write(fsspec, out, buf.getvalue(), overwrite, storage_options)
    except (LmcError, OSError) as e:
        return {"input": path, "error": str(e)}
    return {"input": path, "output": out, "width": hdr.width, "height": hdr.height, "bytes_in": len(raw),
            "bytes_out": buf.tell(), "seconds": time.perf_counter() - t0}


def _check_names(paths: List[str], out_dir: str, ext: str) -> None:
    seen: Dict[str, str] = {}
    for p in paths:
        out = _output_name(p, out_dir, ext)
        if out in seen:
            raise LmcError(f"{seen[out]} and {p} would both be written to {out}")
        seen[out] = p


def _make_dir(fsspec, out_dir: str, storage_options: Dict[str, Any]) -> None:
    fs, path = fsspec.core.url_to_fs(out_dir, **storage_options)
    try:
        fs.makedirs(path, exist_ok=True)
    except (OSError, NotImplementedError):  # object stores have no folders
        pass


def encode_paths(paths: Iterable[str], out_dir: str, *, quality: float = 75, method: str = "hyperprior",
                 rdo: bool = True, threads: Optional[int] = 1, overwrite: bool = False,
                 npartitions: Optional[int] = None, storage_options: Optional[Dict[str, Any]] = None,
                 compute: bool = True):
    """Encode each file of `paths` to `out_dir`/<stem>.lmc on Dask; the list of per-file results
    (or, with compute=False, the dask.bag to compute later). threads: per image (1 suits one task per core)."""
    db, fsspec = _require_dask()
    paths = [str(p) for p in paths]
    _api._check_quality(quality)
    _check_names(paths, out_dir, ".lmc")
    so = dict(storage_options or {})
    _make_dir(fsspec, out_dir, so)
    bag = db.from_sequence(paths, npartitions=npartitions or max(1, min(len(paths), 64)))
    bag = bag.map(_encode_task, out_dir, float(quality), method, bool(rdo), threads, bool(overwrite), so)
    return bag.compute() if compute else bag


def decode_paths(paths: Iterable[str], out_dir: str, *, format: str = "png", threads: Optional[int] = 1,
                 overwrite: bool = False, npartitions: Optional[int] = None,
                 storage_options: Optional[Dict[str, Any]] = None, compute: bool = True):
    """Decode each .lmc of `paths` to `out_dir`/<stem>.<format> on Dask (ICC/EXIF/XMP kept where the format can)."""
    db, fsspec = _require_dask()
    paths = [str(p) for p in paths]
    from ._imageio import decode_format

    decode_format("x." + format.lower())  # an unknown format fails before any work
    _check_names(paths, out_dir, "." + format.lower())
    so = dict(storage_options or {})
    _make_dir(fsspec, out_dir, so)
    bag = db.from_sequence(paths, npartitions=npartitions or max(1, min(len(paths), 64)))
    bag = bag.map(_decode_task, out_dir, format, threads, bool(overwrite), so)
    return bag.compute() if compute else bag
