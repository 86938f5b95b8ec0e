"""``lmcodec demo``: lmcodec beside JPEG, WebP and AVIF at the same file size, on a real photograph.

The packaged photo (data/photo.png, CC0, see data/photo.txt) is coded by
lmcodec at the asked quality; each other codec (Pillow's, whichever this
Pillow build has) is then set to the quality whose file comes closest to
lmcodec's size without exceeding it. The table gives bytes, bpp, PSNR and
times; ``comparison.png`` shows the same crop from each, side by side, at 2x.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from . import _api
from .metrics import psnr

PHOTO = Path(__file__).resolve().parent / "data" / "photo.png"


def _pillow_codec(fmt: str, **extra) -> Callable[[np.ndarray, int], bytes]:
    from PIL import Image

    def enc(arr: np.ndarray, q: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt, quality=int(q), **extra)
        return buf.getvalue()

    return enc


def _pillow_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _classical() -> Dict[str, Callable[[np.ndarray, int], bytes]]:
    from PIL import features

    codecs = {"JPEG": _pillow_codec("JPEG", optimize=True)}
    if features.check("webp"):
        codecs["WebP"] = _pillow_codec("WEBP", method=6)
    if features.check("avif"):
        codecs["AVIF"] = _pillow_codec("AVIF", speed=6)
    return codecs


def match_size(enc: Callable[[np.ndarray, int], bytes], arr: np.ndarray, budget: int) -> Optional[tuple]:
    """The highest integer quality whose file fits in `budget` bytes (bisection over 1..100): (q, data) or None."""
    lo, hi, best = 1, 100, None
    d = enc(arr, lo)
    if len(d) > budget:
        return None
    best = (lo, d)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        d = enc(arr, mid)
        if len(d) <= budget:
            lo, best = mid, (mid, d)
        else:
            hi = mid - 1
    return best


def _crop_box(h: int, w: int, ch: int = 150, cw: int = 200) -> tuple:
    """A detailed crop: the window with the most gradient energy on a coarse grid."""
    return (max(0, (h - ch) // 2), max(0, (w - cw) // 2), min(ch, h), min(cw, w))


def _busiest_crop(arr: np.ndarray, ch: int = 150, cw: int = 200) -> tuple:
    g = arr.astype(np.float32).mean(axis=2) if arr.ndim == 3 else arr.astype(np.float32)
    h, w = g.shape
    if h <= ch or w <= cw:
        return _crop_box(h, w, ch, cw)
    e = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1, :]
    best, box = -1.0, (0, 0, ch, cw)
    for y in range(0, h - ch, max(1, ch // 4)):
        for x in range(0, w - cw, max(1, cw // 4)):
            s = float(e[y:y + ch - 1, x:x + cw - 1].mean())
            if s > best:
                best, box = s, (y, x, ch, cw)
    return box


def comparison_picture(panels: List[tuple], box: tuple, path: Path) -> None:
    """Crops of each (label, array) panel at 2x, side by side with their labels, saved as PNG."""
    from PIL import Image, ImageDraw

    y, x, ch, cw = box
    zoom, pad, label_h = 2, 8, 18
    tiles = []
    for label, arr in panels:
        crop = np.ascontiguousarray(arr[y:y + ch, x:x + cw])
        im = Image.fromarray(crop).convert("RGB").resize((cw * zoom, ch * zoom), Image.NEAREST)
        tiles.append((label, im))
    cols = min(3, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    tw, th = cw * zoom, ch * zoom + label_h
    canvas = Image.new("RGB", (cols * tw + (cols + 1) * pad, rows * th + (rows + 1) * pad), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (label, im) in enumerate(tiles):
        cx = pad + (k % cols) * (tw + pad)
        cy = pad + (k // cols) * (th + pad)
        draw.text((cx, cy + 2), label, fill="black")
        canvas.paste(im, (cx, cy + label_h))
    canvas.save(path)


def run(args, say: Callable[[str], None] = print) -> int:
    """The demo; its report is the command's output, so it goes to standard output."""
    from PIL import Image

    from ._imageio import load_image

    src = Path(args.image) if args.image else PHOTO
    arr, _ = load_image(src.read_bytes(), str(src))
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, -1)
    arr = np.ascontiguousarray(arr[..., :3])
    h, w = arr.shape[:2]
    outdir = Path(args.output)
    outdir.mkdir(parents=True, exist_ok=True)
    mi = _api.model_info("hyperprior")
    say(f"lmcodec demo: {src.name} {w}x{h}; kernels {_api.kernel_path()}; model {mi.get('model_id', '?')[:12]} "
        f"({mi.get('train_steps', '?')} training steps)")

    rows, panels = [], [("original", arr)]
    _api.decode(_api.encode(arr[:64, :64], args.quality))  # load the model and start the threads before timing
    t0 = time.perf_counter()
    data = _api.encode(arr, args.quality)
    t1 = time.perf_counter()
    dec = _api.decode(data)
    t2 = time.perf_counter()
    (outdir / "photo.lmc").write_bytes(data)
    Image.fromarray(dec).save(outdir / "photo_lmcodec.png")
    rows.append(("lmcodec", f"{args.quality:g}", data, dec, t1 - t0, t2 - t1))
    panels.append((f"lmcodec  {len(data) * 8 / (w * h):.3f} bpp  {psnr(arr, dec):.2f} dB", dec))

    for name, enc in _classical().items():
        found = match_size(enc, arr, len(data))
        if found is None:
            say(f"{name}: even quality 1 takes more than {len(data)} bytes; left out")
            continue
        q, d = found
        ta = time.perf_counter()
        enc(arr, q)
        tb = time.perf_counter()
        back = _pillow_decode(d)
        tc = time.perf_counter()
        (outdir / f"photo_{name.lower()}.{ {'JPEG': 'jpg', 'WebP': 'webp', 'AVIF': 'avif'}[name] }").write_bytes(d)
        rows.append((name, str(q), d, back, tb - ta, tc - tb))
        panels.append((f"{name} q{q}  {len(d) * 8 / (w * h):.3f} bpp  {psnr(arr, back):.2f} dB", back))

    lines = [f"{'codec':<9}{'quality':>8}{'bytes':>9}{'bpp':>8}{'PSNR dB':>9}{'enc ms':>9}{'dec ms':>9}"]
    for name, q, d, back, te, td in rows:
        lines.append(f"{name:<9}{q:>8}{len(d):>9d}{len(d) * 8 / (w * h):>8.3f}{psnr(arr, back):>9.2f}"
                     f"{te * 1e3:>9.1f}{td * 1e3:>9.1f}")
    for line in lines:
        print(line)
    box = _busiest_crop(arr)
    comparison_picture(panels, box, outdir / "comparison.png")
    (outdir / "results.txt").write_text("\n".join(lines) + "\n")
    say(f"each codec at the highest quality whose file fits in lmcodec's {len(data)} bytes; "
        f"files, decoded pictures and comparison.png (a 2x crop of each) in {outdir}/")
    return 0
