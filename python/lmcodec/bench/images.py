"""Loading the benchmark images (a directory or one file) as RGB uint8 arrays."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".ppm", ".pnm", ".pgm")


def default_image_dir() -> Path:
    """The packaged sample image (may not exist)."""
    return Path(__file__).resolve().parents[1] / "data" / "sample.png"


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            scale = 65535.0 if arr.max() > 255 else 255.0
            arr = np.clip(np.round(arr / scale * 255.0), 0, 255).astype(np.uint8)
            return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2))
        if im.mode != "RGB":
            if "A" in im.mode or im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA").convert("RGB")
            else:
                im = im.convert("RGB")
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def load_images(path: Union[str, Path, None] = None, limit: Optional[int] = None
                ) -> List[Tuple[str, np.ndarray]]:
    """Every PNG/JPEG/WebP/PPM image in a directory (sorted), or one file, as RGB.

    ``None`` loads the packaged sample image.  Raises FileNotFoundError with
    a helpful message when there is nothing to load.
    """
    if path is None:
        p = default_image_dir()
        if not p.is_file():
            raise FileNotFoundError(
                f"no image directory given and the packaged sample image {p} does not exist; "
                "pass a directory of PNG/JPEG/WebP/PPM images (e.g. the Kodak set)")
    else:
        p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir()
                       if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"no PNG/JPEG/WebP/PPM images in {p}")
    elif p.is_file():
        files = [p]
    else:
        raise FileNotFoundError(f"{p} is neither an image file nor a directory")
    if limit is not None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        files = files[:limit]
    return [(f.name, _load_rgb(f)) for f in files]

