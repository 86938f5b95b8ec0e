"""Rate-distortion benchmark: lmcodec against the classical image codecs.

Function API::

    from lmcodec import bench
    images = bench.load_images("/path/to/kodak")          # [(name, HxWx3 uint8)]
    res = bench.run_bench(images, ["jpeg", "webp", "avif", "lmc"])
    bench.write_report(res, "report.md")
    bench.write_json(res, "rd.json")
    bench.plot_rd(res, "rd.png", reference="kodak_published_rd.json")

Command line (the ``lmcodec bench`` sub-command delegates to :func:`main_bench`)::

    lmcodec bench [DIR] [--codecs jpeg,webp,avif,jxl,jpeg2000,pca,lmc]
                  [--qualities Q,Q,...|CODEC:Q,Q,...] [--plot rd.png]
                  [--report report.md] [--json out.json]
                  [--reference published_rd.json] [--limit N] [-j THREADS]

Only numpy and Pillow are required.  matplotlib (plots), tqdm (progress bar)
and imagecodecs (JPEG XL) are optional and imported when needed.  A codec
whose library is missing, or that raises while probed, is reported and
skipped; the other codecs still run.

Measurement (per codec, quality and image): the encoder output is the real
file (``bpp = 8 * len(bytes) / (width * height)``), decoded back to RGB and
compared with the original: MSE, MAE, RGB PSNR and MS-SSIM (see
:mod:`lmcodec.metrics`).  Per (codec, quality) point: the *mean* over images
of bpp, compression ratio (24 / bpp on RGB), PSNR, MS-SSIM, MSE and MAE, and
the *median* encode / decode wall time in milliseconds.  BD-rates use the
mean curves (PCHIP Bjøntegaard, see :func:`lmcodec.metrics.bd_rate`); the
MS-SSIM BD-rate is computed on MS-SSIM in dB (``-10 log10(1 - MS-SSIM)``).

The modules, in the order a run uses them:

- :mod:`.codecs`  -- one :class:`Codec` adapter per library; codec and quality choice
- :mod:`.images`  -- loading the images
- :mod:`.measure` -- encode/decode/measure every job, average into RD points (:func:`run_bench`)
- :mod:`.bd`      -- BD-rate / BD-PSNR tables, published reference curves
- :mod:`.report`  -- JSON, Markdown report, terminal summary
- :mod:`.plot`    -- PSNR / MS-SSIM vs bpp plots (matplotlib)
- :mod:`.cli`     -- ``lmcodec bench`` (:func:`main_bench`)
"""

from __future__ import annotations

from .bd import bd_tables, load_reference
from .cli import main_bench
from .codecs import ANCHORS, CODECS, DEFAULT_QUALITIES, Codec, CodecUnavailable
from .images import IMAGE_EXTENSIONS, default_image_dir, load_images
from .measure import run_bench
from .plot import plot_rd
from .report import report_markdown, summary_text, write_json, write_report

__all__ = [
    "CODECS",
    "DEFAULT_QUALITIES",
    "ANCHORS",
    "Codec",
    "CodecUnavailable",
    "IMAGE_EXTENSIONS",
    "load_images",
    "default_image_dir",
    "run_bench",
    "bd_tables",
    "write_json",
    "write_report",
    "report_markdown",
    "summary_text",
    "plot_rd",
    "load_reference",
    "main_bench",
]
