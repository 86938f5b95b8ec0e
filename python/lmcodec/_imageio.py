"""Image files in and out for the command line, the demo and lmcodec.dask:
Pillow reading with lmcodec's one conversion (lmcodec/_convert.py) and
metadata, and writing decoded images in a format Pillow writes, with their
ICC profile, EXIF and XMP where the format can carry them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Dict

import numpy as np

from . import _convert
from ._core import LmcError

STDIO = "-"  # the command line's name for standard input / output


def load_image(data: bytes, name: str):
    """File bytes -> (uint8 array by lmcodec's conversion rules, metadata dict). LmcError on anything unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            meta = {k: im.info[k] for k in ("icc_profile", "exif", "xmp") if im.info.get(k)}
            if isinstance(meta.get("xmp"), str):
                meta["xmp"] = meta["xmp"].encode("utf-8")
            im.load()
            arr = _convert.to_array(im)
    except Image.DecompressionBombError as e:
        raise LmcError(f"{name}: {e}") from e
    except LmcError as e:
        raise LmcError(f"{name}: {e}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise LmcError(f"cannot read image {name}: {e}") from e
    return arr, meta


def decode_format(path: str) -> str:
    """The Pillow format a decode writes for this output name (PNG for stdout)."""
    from PIL import Image

    if path == STDIO:
        return "PNG"
    ext = Path(path).suffix.lower()
    if not ext:
        raise LmcError(f"cannot tell the output format from {path!r}: give it an extension such as .png")
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise LmcError(f"unknown output extension {ext!r} for {path}: use one Pillow writes (.png, .webp, .tif, ...)")
    if fmt == "LMC":
        raise LmcError(f"decode writes pictures, not .lmc ({path}); to re-encode, use lmcodec encode")
    return fmt


def save_image(arr: np.ndarray, meta: Dict[str, bytes], fmt: str, f) -> None:
    """Write a decoded image with its ICC profile, EXIF and XMP where the format can carry them."""
    from PIL import Image, PngImagePlugin

    im = Image.fromarray(arr)
    kw: Dict[str, Any] = {}
    if meta.get("icc_profile"):
        kw["icc_profile"] = meta["icc_profile"]
    if meta.get("exif"):
        kw["exif"] = meta["exif"]
    xmp = meta.get("xmp")
    if xmp:
        if fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"), zip=False)
            kw["pnginfo"] = info
        elif fmt in ("JPEG", "WEBP", "AVIF"):
            kw["xmp"] = xmp
    try:
        im.save(f, format=fmt, **kw)
    except (OSError, ValueError, KeyError) as e:
        raise LmcError(f"cannot write {im.mode} {im.size[0]}x{im.size[1]} as {fmt}: {e}") from e
