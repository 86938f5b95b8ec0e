"""Pillow plugin for .lmc files.

Registered on ``import lmcodec``. Opening is lazy: the header is parsed at
``Image.open`` (so size and mode are known, and Pillow's decompression-bomb
check applies) and pixels are decoded on ``load()``. Saving accepts
``quality`` (1-100, default 75), ``method`` ("hyperprior" or "pca"),
``threads``, ``rdo`` (rate-distortion optimised quantisation, default True),
``max_bytes`` (a file size budget: the highest quality, at most ``quality``,
that fits), ``icc_profile``, ``exif`` and ``xmp``; the image's own ICC
profile, EXIF and XMP are kept when not given.

Mode handling (as Pillow's WebP plugin does): L, RGB and RGBA are stored as
they are; LA, PA and P with transparency become RGBA; other P, CMYK, YCbCr,
... become RGB; 1, I, I;16 and F become L.
"""

from __future__ import annotations

import io

from PIL import Image, ImageFile

from . import _api
from ._core import LmcError

SIGNATURE = b"\x89LMC\r\n\x1a\n"


def _accept(prefix: bytes) -> bool:
    return prefix[:8] == SIGNATURE


class LmcImageFile(ImageFile.ImageFile):
    format = "LMC"
    format_description = "lmcodec learned image"

    def _open(self) -> None:
        data = self.fp.read()
        try:
            hdr = _api.info(data)
        except LmcError as e:
            raise SyntaxError(f"not a valid LMC file: {e}") from e
        self._lmc_data = data
        self._size = (hdr.width, hdr.height)
        self._mode = hdr.mode
        self.info["quality"] = hdr.quality
        self.info["lmc_codec"] = hdr.codec
        for key, value in hdr.metadata.items():
            self.info[key] = value
        self.tile = []

    def load(self):
        data = getattr(self, "_lmc_data", None)
        if data is not None:
            arr = _api.decode(data)
            raw = arr.tobytes()
            self._lmc_data = None
            if self._exclusive_fp and self.fp:
                self.fp.close()
            self.fp = io.BytesIO(raw)
            self._exclusive_fp = True
            self.tile = [ImageFile._Tile("raw", (0, 0) + self.size, 0, self.mode)]
        return super().load()

    def load_seek(self, pos: int) -> None:
        self.fp.seek(pos)

    def load_read(self, read_bytes: int) -> bytes:
        return self.fp.read(read_bytes)


def _convert(im: Image.Image) -> Image.Image:
    if im.mode in ("L", "RGB", "RGBA"):
        return im
    if im.mode in ("LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA")
    if im.mode in ("1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        if im.mode.startswith("I;16"):
            return im.convert("I").point(lambda v: v * (1 / 257)).convert("L")
        return im.convert("L")
    return im.convert("RGB")


def _save(im: Image.Image, fp, filename) -> None:
    info = im.encoderinfo
    quality = info.get("quality", 75)
    icc = info.get("icc_profile", im.info.get("icc_profile"))
    exif = info.get("exif", im.info.get("exif"))
    if isinstance(exif, Image.Exif):
        exif = exif.tobytes()
    xmp = info.get("xmp", im.info.get("xmp"))
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    data = _api.encode(_convert(im), quality, threads=info.get("threads"), method=info.get("method", "hyperprior"),
                       icc_profile=icc or None, exif=exif or None, xmp=xmp or None, rdo=info.get("rdo", True),
                       max_bytes=info.get("max_bytes"))
    fp.write(data)


Image.register_open(LmcImageFile.format, LmcImageFile, _accept)
Image.register_save(LmcImageFile.format, _save)
Image.register_extension(LmcImageFile.format, ".lmc")
Image.register_mime(LmcImageFile.format, "image/x-lmc")
