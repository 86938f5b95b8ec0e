"""In-RAM patch bank over ../shared/data/train.

Every image is decoded once into a uint8 tensor. Batches are random crops,
with a random downscale in [0.5, 1] for JPEG sources (hides their blocking
artifacts) and random horizontal flips. A fixed slice of images (every
``VAL_EVERY``-th file in sorted order) is held out for validation.
Kodak is never read here.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

DEFAULT_ROOT = Path(os.environ.get("LMCODEC_TRAIN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "train"))
EXTS = {".jpg", ".jpeg", ".png", ".webp"}
VAL_EVERY = 25


@dataclass
class Item:
    pixels: torch.Tensor  # (3, H, W) uint8
    is_jpeg: bool
    name: str


def list_images(root: Path) -> list[Path]:
    files = [p for p in sorted(root.rglob("*")) if p.suffix.lower() in EXTS and "kodak" not in p.parts]
    return files


def load_item(path: Path, min_side: int) -> Item | None:
    with Image.open(path) as im:
        im = im.convert("RGB")
        arr = np.asarray(im)
    if min(arr.shape[:2]) < min_side:
        return None
    return Item(torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous(), path.suffix.lower() in {".jpg", ".jpeg"}, path.name)


class PatchBank:
    def __init__(self, root: Path | str = DEFAULT_ROOT, split: str = "train", min_side: int = 128,
                 limit: int | None = None, seed: int = 0):
        root = Path(root)
        files = list_images(root)
        if not files:
            raise FileNotFoundError(f"no training images under {root}")
        if split == "train":
            files = [f for i, f in enumerate(files) if i % VAL_EVERY != 0]
        elif split == "val":
            files = [f for i, f in enumerate(files) if i % VAL_EVERY == 0]
        else:
            raise ValueError(split)
        if limit is not None:
            files = files[:limit]
        self.items = [it for it in (load_item(f, min_side) for f in files) if it is not None]
        areas = np.array([it.pixels.shape[1] * it.pixels.shape[2] for it in self.items], dtype=np.float64)
        self.weights = areas / areas.sum()
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def crop_spec(self, item: Item, size: int) -> tuple[int, int, int, bool]:
        """Draw one crop's random choices (source size, top, left, flip) from the bank's RNG."""
        _, H, W = item.pixels.shape
        scale = 1.0
        if item.is_jpeg:
            scale = self.rng.uniform(0.5, 1.0)
        src = int(math.ceil(size / scale))
        src = min(src, H, W)
        top = self.rng.randint(0, H - src)
        left = self.rng.randint(0, W - src)
        return src, top, left, self.rng.random() < 0.5

    @staticmethod
    def make_crop(item: Item, spec: tuple[int, int, int, bool], size: int) -> torch.Tensor:
        src, top, left, flip = spec
        patch = item.pixels[:, top:top + src, left:left + src].float().unsqueeze(0) / 255.0
        if src != size:
            patch = F.interpolate(patch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        patch = patch.clamp_(0, 1)[0]
        if flip:
            patch = patch.flip(-1)
        return patch

    def crop(self, item: Item, size: int) -> torch.Tensor:
        return self.make_crop(item, self.crop_spec(item, size), size)

    def batch(self, batch_size: int, size: int, part: tuple[int, int] = (0, 1)) -> torch.Tensor:
        """A batch of random crops. part=(rank, world): every rank draws the same global batch's random
        choices (banks seeded alike) and builds only its own contiguous slice of batch_size // world crops,
        so that data-parallel ranks together see exactly the batch one process would."""
        rank, world = part
        idx = self.np_rng.choice(len(self.items), size=batch_size, p=self.weights)
        specs = [self.crop_spec(self.items[i], size) for i in idx]
        per = batch_size // world
        lo, hi = rank * per, (rank + 1) * per
        return torch.stack([self.make_crop(self.items[i], sp, size) for i, sp in zip(idx[lo:hi], specs[lo:hi])])

    def fixed_crops(self, size: int, count: int) -> torch.Tensor:
        """Deterministic centre crops (validation)."""
        out = []
        for it in self.items[:count]:
            _, H, W = it.pixels.shape
            s = min(size, H, W) // 64 * 64
            top, left = (H - s) // 2, (W - s) // 2
            out.append(it.pixels[:, top:top + s, left:left + s].float() / 255.0)
        s = min(o.shape[-1] for o in out)
        return torch.stack([o[:, :s, :s] for o in out])
