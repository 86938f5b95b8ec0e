"""The ``lmcodec explain`` report: PNG figures drawn with Pillow (no
matplotlib: the runtime package does not depend on it) and an index.html /
README.md that shows them with the numbers."""

from __future__ import annotations

import html
from pathlib import Path
from typing import List, Tuple

import numpy as np

from .explain import Explanation

# an "inferno"-like ramp: dark = few bits, bright = many
_ANCHORS = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
                     [250, 193, 39], [252, 255, 164]], dtype=np.float64)


def colormap(v: np.ndarray, vmax: float) -> np.ndarray:
    """Values in [0, vmax] -> (..., 3) uint8 colours of the ramp."""
    t = np.clip(np.asarray(v, dtype=np.float64) / max(vmax, 1e-12), 0.0, 1.0) * (len(_ANCHORS) - 1)
    i = np.minimum(t.astype(np.int64), len(_ANCHORS) - 2)
    f = (t - i)[..., None]
    return np.rint(_ANCHORS[i] * (1 - f) + _ANCHORS[i + 1] * f).astype(np.uint8)


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _titled(img: np.ndarray, title: str, legend: Tuple[float, str] = None):
    """A panel: title above the image, and a colour bar 0..vmax (label) below when legend is given."""
    from PIL import Image, ImageDraw

    h, w = img.shape[:2]
    extra = 34 if legend else 0
    canvas = Image.new("RGB", (w, h + 24 + extra), "white")
    canvas.paste(Image.fromarray(img), (0, 24))
    d = ImageDraw.Draw(canvas)
    font = _font()
    d.text((4, 4), title, fill="black", font=font)
    if legend:
        vmax, unit = legend
        bar = colormap(np.tile(np.linspace(0, vmax, max(2, w - 120))[None, :], (10, 1)), vmax)
        canvas.paste(Image.fromarray(bar), (60, h + 30))
        d.text((4, h + 28), "0", fill="black", font=font)
        d.text((w - 56, h + 28), f"{vmax:.3g}", fill="black", font=font)
        d.text((60, h + 42), unit, fill="black", font=font)
    return canvas


def _overlay(gray_of: np.ndarray, heat: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    g = gray_of.astype(np.float64).mean(axis=2, keepdims=True)
    return np.rint(alpha * heat + (1 - alpha) * g).astype(np.uint8)


def _bars(values: List[np.ndarray], labels: List[str], title: str, width: int = 900, height: int = 160):
    """Stacked bar charts of one value per channel (already in display order)."""
    from PIL import Image, ImageDraw

    font = _font()
    canvas = Image.new("RGB", (width, 24 + len(values) * (height + 22)), "white")
    d = ImageDraw.Draw(canvas)
    d.text((4, 4), title, fill="black", font=font)
    for k, (v, lab) in enumerate(zip(values, labels)):
        top = 24 + k * (height + 22)
        d.text((4, top + 2), lab, fill="black", font=font)
        vmax = float(v.max()) if v.size and v.max() > 0 else 1.0
        bw = (width - 8) / max(1, v.size)
        base = top + 18 + height - 4
        for i, x in enumerate(v):
            x0 = 4 + i * bw
            hgt = (height - 8) * float(x) / vmax
            d.rectangle([x0, base - hgt, max(x0, x0 + bw - 1), base], fill=tuple(colormap(np.array(x), vmax).tolist()))
        d.text((width - 150, top + 2), f"max {vmax:.4g}", fill="black", font=font)
    return canvas


def write_report(ex: Explanation, out_dir, name: str = "image") -> Path:
    """Writes the figures, index.html and README.md into out_dir; returns index.html's path."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    px = ex.width * ex.height
    figs: List[Tuple[str, str, str]] = []  # (file, title, caption)

    def save(img, file: str, title: str, caption: str) -> None:
        (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(out / file)
        figs.append((file, title, caption))

    save(ex.decoded, "decoded.png", "Decoded image",
         f"{ex.width}x{ex.height}, quality {ex.quality:g}, {len(ex.stream)} bytes = {ex.bpp:.4f} bpp.")
    vy = float(np.percentile(ex.bits_y, 99.5)) or 1.0
    save(_titled(_overlay(ex.decoded, colormap(ex.bits_y, vy)), "latent bits per pixel (y)", (vy, "bits/pixel")),
         "bits_y.png", "Where the bits go: latents y",
         f"Each 16x16 cell coloured by the bits its {ex.symbol_bits_y.shape[0]} latent symbols took "
         f"(sum {ex.symbol_bits_y.sum() / 8:.0f} bytes; {ex.latent_chunk} payload {ex.payload_bytes[ex.latent_chunk]} bytes).")
    vz = float(ex.bits_z.max()) or 1.0
    save(_titled(_overlay(ex.decoded, colormap(ex.bits_z, vz)), "side-information bits per pixel (z)",
                 (vz, "bits/pixel")), "bits_z.png", "Where the bits go: side information z",
         f"Each 64x64 cell coloured by the bits of its {ex.symbol_bits_z.shape[0]} hyper-latents "
         f"(sum {ex.symbol_bits_z.sum() / 8:.0f} bytes; SIDE payload {ex.payload_bytes['SIDE']} bytes).")
    if ex.error is not None:
        ve = float(np.percentile(ex.error, 99.5)) or 1.0
        save(_titled(colormap(ex.error, ve), "|x - x_hat| (mean over R, G, B)", (ve, "levels of 255")), "error.png",
             "Error map", f"Absolute error per pixel (mean over R, G, B): mean {float(ex.error.mean()):.2f}, "
             f"99.5th percentile {ve:.1f}, max {float(ex.error.max()):.1f} levels of 255.")
    if ex.quality_map is not None:
        qm = ex.quality_map.astype(np.float64)
        span = float(np.abs(qm).max()) or 1.0
        cells = np.repeat(np.repeat((qm + span) / 2, 64, axis=0), 64, axis=1)[: ex.height, : ex.width]
        save(_titled(_overlay(ex.decoded, colormap(cells, span)), f"quality offsets (-{span:g} .. +{span:g})",
                     (2 * span, "offset + max")), "quality_map.png", "Quality map",
             "The stream's per-block quality offsets (dark = fewer quality points, bright = more).")
    order = ex.channel_order
    save(_bars([ex.channel_rate[order] / px, np.sqrt(ex.channel_energy[order])],
               ["rate (bits per pixel), channels sorted by rate",
                "RMS of the dequantised latent (square root of the energy), same order"],
               f"{order.size} latent channels, strongest first"), "channels.png", "Per-channel rate and energy",
         f"The 8 strongest channels: {', '.join(str(int(c)) for c in order[:8])}; they carry "
         f"{ex.channel_rate[order[:8]].sum() / max(ex.channel_rate.sum(), 1e-9) * 100:.1f} % of the latent bits.")
    for k, (chans, img) in enumerate(ex.groups):
        share = ex.channel_rate[chans].sum() / max(ex.channel_rate.sum(), 1e-9) * 100
        lo = int(np.where(order == chans[0])[0][0]) + 1
        save(img, f"group_{k}.png", f"Channels ranked {lo}-{lo + len(chans) - 1} alone",
             f"Decoded with only these {len(chans)} channels kept ({share:.1f} % of the latent bits); every other "
             "channel set to its mean over the image.")
    rows = [("file size", f"{len(ex.stream)} bytes ({ex.bpp:.4f} bpp)"),
            (f"latents ({ex.latent_chunk})",
             f"{ex.payload_bytes[ex.latent_chunk]} bytes; symbols' code lengths {ex.symbol_bits_y.sum() / 8:.1f}"),
            ("side info (SIDE)", f"{ex.payload_bytes['SIDE']} bytes; symbols' code lengths {ex.symbol_bits_z.sum() / 8:.1f}"),
            ("container", f"{len(ex.stream) - sum(ex.payload_bytes.values())} bytes (header, chunk framing, QMAP)")]
    page = ["<!doctype html><meta charset='utf-8'>", f"<title>lmcodec explain: {html.escape(name)}</title>",
            "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}img{max-width:100%}"
            "td{padding:2px 10px}</style>", f"<h1>lmcodec explain: {html.escape(name)}</h1><table>"]
    page += [f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>" for a, b in rows]
    page.append("</table>")
    md = [f"# lmcodec explain: {name}", ""] + [f"- **{a}**: {b}" for a, b in rows] + [""]
    for file, title, caption in figs:
        page.append(f"<h2>{html.escape(title)}</h2><img src='{file}' alt='{html.escape(title)}'>"
                    f"<p>{html.escape(caption)}</p>")
        md += [f"## {title}", "", f"![{title}]({file})", "", caption, ""]
    (out / "index.html").write_text("\n".join(page) + "\n", encoding="utf-8")
    (out / "README.md").write_text("\n".join(md), encoding="utf-8")
    return out / "index.html"
