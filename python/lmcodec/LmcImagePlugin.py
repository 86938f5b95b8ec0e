"""Pillow plugin for .lmc files.

Registered on ``import lmcodec``. Opening is lazy: the header is parsed at
``Image.open`` (so size and mode are known, and Pillow's decompression-bomb
check applies) and pixels are decoded on ``load()``.

Errors follow Pillow's conventions. A file with the LMC signature whose header
is damaged raises ``LmcFileError`` from ``Image.open`` with the precise reason
(not Pillow's generic "cannot identify image file"). A sound header over a
damaged body (bad CRC, truncation) opens, and ``load()`` raises
``LmcFileError``. ``LmcFileError`` is both an ``OSError`` (what Pillow's own
plugins raise) and an ``lmcodec.LmcError``.

Saving accepts ``quality`` (1-100, default 75), ``method`` ("hyperprior" or
"pca"), ``threads``, ``rdo`` (rate-distortion optimised quantisation, default
True), ``max_bytes`` (a file size budget: the highest quality, at most
``quality``, that fits), ``icc_profile``, ``exif`` and ``xmp``; the image's own
ICC profile, EXIF and XMP are kept when not given. ``lossless=True`` codes
every sample exactly; ``max_error=k`` (1..255) guarantees |decoded - input|
<= k on every sample (alpha stays exact); both ignore ``quality`` and refuse
``max_bytes``. Other formats' keywords that would change the picture
(``near_lossless``, ``subsampling``, ...) are refused: nothing is silently
coded differently than asked. Modes are converted by the same rules as
``lmcodec.encode`` (README, "Accepted images"): 16-bit and float images are
scaled, never clipped. LMC is a single-frame format: ``save_all`` with more
than one frame is refused.

``draft()`` is a no-op (there is no reduced-size decode): it returns None, so
Pillow's ``thumbnail()`` decodes the full image and then resizes it.
"""

from __future__ import annotations

import warnings

from PIL import Image, ImageFile

from . import _api
from ._core import LmcError

SIGNATURE = b"\x89LMC\r\n\x1a\n"

# Keywords other formats take that would change the picture; lmcodec cannot
# honour them, so saving with them is an error rather than a surprise.
_PICTURE_KEYWORDS = ("near_lossless", "alpha_quality", "subsampling", "qtables", "quality_layers", "bits")


class LmcFileError(LmcError, OSError):
    """A damaged or unreadable .lmc file met through Pillow: an OSError (Pillow's
    convention) that is also lmcodec's LmcError, carrying its precise message."""


def _accept(prefix: bytes) -> bool:
    return prefix[:8] == SIGNATURE


class LmcImageFile(ImageFile.ImageFile):
    format = "LMC"
    format_description = "lmcodec learned image"

    def _open(self) -> None:
        data = self.fp.read()
        try:
            hdr = _api.info(data, sections=False)
        except LmcError as e:
            raise LmcFileError(f"not a valid LMC file: {e}") from e
        # the metadata chunks; a damaged body is reported by load(), as Pillow's plugins do
        self._lmc_error = None
        try:
            hdr = _api.info(data)
        except LmcError as e:
            self._lmc_error = str(e)
        self._lmc_data = data
        self._size = (hdr.width, hdr.height)
        self._mode = hdr.mode
        self.info["quality"] = hdr.quality
        self.info["lmc_codec"] = hdr.codec
        for key, value in hdr.metadata.items():
            self.info[key] = value
        self.tile = []

    def draft(self, mode, size):
        """No reduced-size decode exists for LMC: a no-op (returns None)."""
        return None

    def load(self):
        data = getattr(self, "_lmc_data", None)
        if data is not None:
            if self._lmc_error is not None:
                raise LmcFileError(f"damaged LMC file: {self._lmc_error}")
            try:
                with warnings.catch_warnings():
                    # Pillow has already applied (and warned about) its decompression-bomb rule at open
                    warnings.simplefilter("ignore", _api.DecompressionBombWarning)
                    arr = _api.decode(data)
            except LmcError as e:
                raise LmcFileError(f"damaged LMC file: {e}") from e
            self._lmc_data = None
            # straight from the decoded array into Pillow's image (L / RGBA share its memory; RGB is laid
            # out once into Pillow's 4-byte pixels): no intermediate byte string
            decoded = Image.frombuffer(self.mode, self.size, arr, "raw", self.mode, 0, 1)
            self.im = decoded.im
            self.readonly = decoded.readonly
            self.tile = []
            if self._exclusive_fp and self.fp:
                self.fp.close()
            self.fp = None
        return Image.Image.load(self)


def _save(im: Image.Image, fp, filename) -> None:
    info = im.encoderinfo
    for key in _PICTURE_KEYWORDS:
        if info.get(key) is not None:
            raise LmcError(f"the LMC format does not take {key}=; lmcodec would code a different picture than "
                           "asked, so nothing was written")
    quality = info.get("quality", 75)
    icc = info.get("icc_profile", im.info.get("icc_profile"))
    exif = info.get("exif", im.info.get("exif"))
    if isinstance(exif, Image.Exif):
        exif = exif.tobytes()
    xmp = info.get("xmp", im.info.get("xmp"))
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    data = _api.encode(im, quality, threads=info.get("threads"), method=info.get("method", "hyperprior"),
                       icc_profile=icc or None, exif=exif or None, xmp=xmp or None, rdo=info.get("rdo", True),
                       max_bytes=info.get("max_bytes"), lossless=info.get("lossless", False),
                       max_error=info.get("max_error"), quality_map=info.get("quality_map"), roi=info.get("roi"),
                       roi_strength=info.get("roi_strength"))
    fp.write(data)


def _save_all(im: Image.Image, fp, filename) -> None:
    frames = getattr(im, "n_frames", 1)
    if frames > 1 or im.encoderinfo.get("append_images"):
        raise LmcError("LMC holds a single image: save_all with several frames is not supported "
                       "(save each frame to its own file)")
    _save(im, fp, filename)


Image.register_open(LmcImageFile.format, LmcImageFile, _accept)
Image.register_save(LmcImageFile.format, _save)
Image.register_save_all(LmcImageFile.format, _save_all)
Image.register_extension(LmcImageFile.format, ".lmc")
Image.register_mime(LmcImageFile.format, "image/x-lmc")
