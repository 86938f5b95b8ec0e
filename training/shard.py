"""A compact training shard: random crops of ../shared/data/train packed as
lossy WebP into one small folder, for training on a machine that cannot see
../shared (the device machine, where the working tree travels with at most
64 MiB; DEVELOPERS.md).

    python -m training.shard                       # -> shard/ (ignored by git), <= 40 MiB
    LMCODEC_TRAIN_DATA=shard python -m training.train --resume ...

The crops are drawn as the patch bank draws its own (image chosen with
probability proportional to its area; JPEG sources first downscaled by a
random factor in [0.5, 1]), at ``--size`` pixels so that training can still
take random sub-crops of them. The source's validation split carries over:
crop k (file ``k:06d.webp``) comes from a validation image exactly when
k % VAL_EVERY == 0, which is the file the patch bank holds back from the
shard (data.PatchBank splits by position in sorted order), so no source image
feeds both sides. The shard records where it came from in ``SHARD.txt``.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .data import DEFAULT_ROOT, VAL_EVERY, list_images


def _load(path: Path) -> tuple[Image.Image, bool]:
    with Image.open(path) as im:
        return im.convert("RGB"), path.suffix.lower() in {".jpg", ".jpeg"}


def _crop(rng: random.Random, im: Image.Image, is_jpeg: bool, size: int) -> Image.Image | None:
    W, H = im.size
    scale = rng.uniform(0.5, 1.0) if is_jpeg else 1.0
    src = min(int(math.ceil(size / scale)), W, H)
    if src < size // 2:
        return None  # too small an image for this crop size
    left, top = rng.randint(0, W - src), rng.randint(0, H - src)
    c = im.crop((left, top, left + src, top + src))
    return c.resize((size, size), Image.Resampling.LANCZOS) if src != size else c


def build(out: Path, root: Path = DEFAULT_ROOT, size: int = 320, max_mib: float = 40.0, quality: int = 90,
          max_crops: int | None = None, seed: int = 0) -> dict:
    """Writes crops to `out` until the next one would pass max_mib (or
    max_crops are written); returns counts and sizes."""
    files = list_images(Path(root))
    if not files:
        raise FileNotFoundError(f"no training images under {root}")
    train = [f for i, f in enumerate(files) if i % VAL_EVERY != 0]
    val = [f for i, f in enumerate(files) if i % VAL_EVERY == 0]
    if not train or not val:
        raise ValueError(f"need at least {VAL_EVERY + 1} images under {root} for both splits")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.webp"):
        old.unlink()
    rng = random.Random(seed)
    cache: dict[Path, tuple[Image.Image, bool]] = {}

    def areas(fs):
        a = []
        for f in fs:
            with Image.open(f) as im:
                a.append(im.size[0] * im.size[1])
        w = np.asarray(a, dtype=np.float64)
        return w / w.sum()

    weights = {"train": areas(train), "val": areas(val)}
    np_rng = np.random.default_rng(seed)
    budget = int(max_mib * (1 << 20))
    total, k, skipped = 0, 0, 0
    while max_crops is None or k < max_crops:
        side = "val" if k % VAL_EVERY == 0 else "train"
        fs = val if side == "val" else train
        f = fs[int(np_rng.choice(len(fs), p=weights[side]))]
        if f not in cache:
            if len(cache) > 64:
                cache.pop(next(iter(cache)))
            cache[f] = _load(f)
        im, is_jpeg = cache[f]
        c = _crop(rng, im, is_jpeg, size)
        if c is None:
            skipped += 1
            if skipped > 1000:
                raise ValueError("the images are too small for this crop size")
            continue
        buf = io.BytesIO()
        c.save(buf, format="WEBP", quality=quality, method=4)
        data = buf.getvalue()
        if total + len(data) > budget:
            break
        (out / f"{k:06d}.webp").write_bytes(data)
        total += len(data)
        k += 1
    info = {"crops": k, "val_crops": (k + VAL_EVERY - 1) // VAL_EVERY, "bytes": total, "size": size,
            "quality": quality, "seed": seed, "source": str(root)}
    (out / "SHARD.txt").write_text(
        "lmcodec training shard (python -m training.shard); not shipped, research data terms apply\n"
        + "".join(f"{key}: {v}\n" for key, v in info.items()))
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="shard")
    ap.add_argument("--data", default=str(DEFAULT_ROOT))
    ap.add_argument("--size", type=int, default=320, help="crop side (pixels)")
    ap.add_argument("--max-mib", type=float, default=40.0,
                    help="stop before the shard passes this size (the device tool carries 64 MiB with the repository)")
    ap.add_argument("--quality", type=int, default=90, help="WebP quality")
    ap.add_argument("--max-crops", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    info = build(Path(args.out), Path(args.data), args.size, args.max_mib, args.quality, args.max_crops, args.seed)
    print(f"[shard] {info['crops']} crops of {info['size']}x{info['size']} ({info['val_crops']} held out), "
          f"{info['bytes'] / (1 << 20):.1f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
