"""Cache the exported encoder's latents for entropy-model training.

    python -m training.cache_latents                      # build / resume the cache
    python -m training.cache_latents --variants orig,s075 # only some variants
    python -m training.cache_latents --info               # what is cached

What is stored: y = g_a(x) + g_a_lin(x) computed by the *exported* weights
(python/lmcodec/models/hyperprior.lmw loaded with
``training.export.load_hyperprior_weights``: the int8/f16-dequantized float
transforms the C++ encoder runs), **before** the per-anchor gain, so that any
rate position t can be drawn later (the codec codes round(y*gain(t) - mu)).

Layout (outside the repository, default ~/.cache/lmcodec/latents, or
$LMCODEC_LATENTS):

    <root>/<model id>/meta.json
    <root>/<model id>/train/<variant>/shard_0000.npy   flat fp16, images back to back, each (M, h, w) C order
    <root>/<model id>/train/<variant>/shard_0000.json  index: name, h, w, offset, pixel size (written last:
                                                      a shard is complete only when its .json exists)
    <root>/<model id>/val/orig/...                     held-out images, fp32

Splits are training/data.py's: the held-out ("val") images are every
``VAL_EVERY``-th file of the sorted list, exactly the images train.py and
tools/compare_weights.py hold out; train.py's 24 validation crops (the 256 px
centre crops of the first 24 val images, ``PatchBank.fixed_crops``) are cached
as the val variant ``fixed256``, and every val image centre-cropped to a
multiple of 64 (no padding: exactly what the codec codes for that crop) as
``orig``.

Train variants (the augmentations of data.py, made deterministic):
  orig      every image, centre-cropped to a multiple of 16
  flip      every image, mirrored left-right
  s075      JPEG sources only, downscaled by 0.75 (or the least factor that
            keeps the short side at 256 px; bilinear, antialiased as data.py)
  s075flip  the same, mirrored

Resumable: finished shards are skipped; a killed run loses at most one shard.

``LatentBank`` loads a split into RAM and samples (latents, rate position)
batches: random S x S latent crops (S a multiple of 4, so h_a/h_s shapes
work), images drawn by area, t ~ U[0, A-1] per sample.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import DEFAULT_ROOT, VAL_EVERY, list_images

REPO = Path(__file__).resolve().parents[1]
SHIPPED_WEIGHTS = REPO / "python" / "lmcodec" / "models" / "hyperprior.lmw"


def entropy_base_weights(shipped: Path = SHIPPED_WEIGHTS) -> Path:
    """The weights the entropy models are trained on: the shipped file, or,
    once that carries a context model (arch.ctx), the archived plain
    hyperprior it was trained from (its ctx.base_model_id): same transforms,
    and the variants start from its hyperprior."""
    from . import lmw

    meta = lmw.read(shipped).meta
    if "arch.ctx" not in meta:
        return shipped
    base = shipped.parent / f"hyperprior-{str(meta['ctx.base_model_id'])[:16]}.lmw"
    if not base.exists():
        raise FileNotFoundError(f"{shipped} has a context model trained on {meta['ctx.base_model_id']}, "
                                f"but {base} is missing")
    return base


DEFAULT_WEIGHTS = entropy_base_weights()
DEFAULT_CACHE = Path(os.environ.get("LMCODEC_LATENTS", Path.home() / ".cache" / "lmcodec" / "latents"))
TRAIN_VARIANTS = ("orig", "s075", "flip", "s075flip")
VAL_VARIANTS = ("orig", "fixed256")
SHARD_IMAGES = 48
SCALE = 0.75
MIN_SIDE_AFTER_SCALE = 256


def is_jpeg(path: Path) -> bool:
    return path.suffix.lower() in {".jpg", ".jpeg"}


def load_rgb(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()  # (3, H, W) uint8


def centre_crop(x: torch.Tensor, multiple: int) -> torch.Tensor | None:
    H, W = x.shape[-2:]
    h, w = H // multiple * multiple, W // multiple * multiple
    if h == 0 or w == 0:
        return None
    top, left = (H - h) // 2, (W - w) // 2
    return x[..., top:top + h, left:left + w]


def prepare(pixels: torch.Tensor, jpeg: bool, variant: str, multiple: int) -> torch.Tensor | None:
    """uint8 (3, H, W) -> float (1, 3, h, w) in [0, 1] for one variant, or None
    when the variant does not apply (scaled variants of non-JPEG sources)."""
    if variant == "fixed256":  # PatchBank.fixed_crops(256, .): s = min(256, H, W) // 64 * 64, centred
        _, H, W = pixels.shape
        s = min(256, H, W) // 64 * 64
        top, left = (H - s) // 2, (W - s) // 2
        return (pixels[:, top:top + s, left:left + s].float() / 255.0).unsqueeze(0)
    scaled = variant.startswith("s075")
    if scaled and not jpeg:
        return None
    x = pixels.float().unsqueeze(0) / 255.0
    if scaled:
        H, W = x.shape[-2:]
        s = max(SCALE, min(1.0, MIN_SIDE_AFTER_SCALE / min(H, W)))
        if s < 1.0:
            size = (int(round(H * s)), int(round(W * s)))
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    if variant.endswith("flip"):
        x = x.flip(-1)
    return centre_crop(x, multiple)


@torch.no_grad()
def encode(model, x: torch.Tensor) -> torch.Tensor:
    """y before the gain, float32 (M, h, w)."""
    x = x.contiguous(memory_format=torch.channels_last)
    return model.analysis(x)[0].contiguous()


def split_files(root: Path, split: str) -> list[Path]:
    files = list_images(Path(root))
    if split == "train":
        return [f for i, f in enumerate(files) if i % VAL_EVERY != 0]
    if split == "val":
        return [f for i, f in enumerate(files) if i % VAL_EVERY == 0]
    raise ValueError(split)


def model_key(model_id: bytes | None) -> str:
    return model_id.hex()[:16] if model_id else "unknown"


def build_split(model, root: Path, out: Path, split: str, variants, log=print, limit: int | None = None,
                shard_images: int = SHARD_IMAGES, min_side: int = 128) -> dict:
    """Encode every image of ``split`` for each variant into shards under out/split/variant.
    Returns counts per variant."""
    files = split_files(root, split)
    if split == "val":
        # PatchBank(split="val") keeps images with min side >= 128 (train.py's val bank); fixed256 takes the first 24
        pass
    if limit is not None:
        files = files[:limit]
    dtype = np.float32 if split == "val" else np.float16
    multiple = 64 if split == "val" else 16
    counts = {}
    for variant in variants:
        vdir = out / split / variant
        vdir.mkdir(parents=True, exist_ok=True)
        todo = files
        if variant == "fixed256":
            todo = files[:24]
        n_shards = math.ceil(len(todo) / shard_images)
        done = 0
        t0 = time.time()
        for k in range(n_shards):
            idx_path = vdir / f"shard_{k:04d}.json"
            if idx_path.exists():
                done += len(json.loads(idx_path.read_text())["entries"])
                continue
            chunks, entries, offset = [], [], 0
            for path in todo[k * shard_images:(k + 1) * shard_images]:
                pixels = load_rgb(path)
                if min(pixels.shape[1:]) < min_side:
                    continue
                x = prepare(pixels, is_jpeg(path), variant, multiple)
                if x is None:
                    continue
                y = encode(model, x).numpy().astype(dtype)
                M, h, w = y.shape
                chunks.append(y.reshape(-1))
                entries.append({"name": str(path.relative_to(root)), "h": h, "w": w, "offset": offset,
                                "pixels": [int(x.shape[-2]), int(x.shape[-1])], "jpeg": is_jpeg(path)})
                offset += y.size
            flat = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
            tmp = vdir / f"shard_{k:04d}.tmp.npy"
            np.save(tmp, flat)
            os.replace(tmp, vdir / f"shard_{k:04d}.npy")
            tmp_idx = vdir / f"shard_{k:04d}.json.tmp"
            tmp_idx.write_text(json.dumps({"M": int(model.cfg.M), "dtype": np.dtype(dtype).name, "entries": entries}))
            os.replace(tmp_idx, idx_path)
            done += len(entries)
            log(f"[cache] {split}/{variant} shard {k + 1}/{n_shards}: {done} images, {time.time() - t0:.0f} s")
        counts[variant] = done
    return counts


def build(model, model_id: bytes | None, root: Path, cache: Path, train_variants=TRAIN_VARIANTS,
          val_variants=VAL_VARIANTS, log=print, limit: int | None = None, weights: str = "",
          shard_images: int = SHARD_IMAGES) -> Path:
    out = Path(cache) / model_key(model_id)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"model_id": model_id.hex() if model_id else None, "weights": str(weights), "M": int(model.cfg.M),
            "anchors": int(model.cfg.anchors), "data": str(root), "val_every": VAL_EVERY,
            "what": "y = g_a(x) + g_a_lin(x) before the gain, exported weights"}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    model = model.eval().to(memory_format=torch.channels_last)
    # held-out first (small, and the measurements need it), then the train variants in order
    build_split(model, root, out, "val", val_variants, log, limit, shard_images)
    build_split(model, root, out, "train", train_variants, log, limit, shard_images)
    return out


# ------------------------------------------------------------------ loader --

class LatentBank:
    """Cached latents of one split in RAM. ``images`` is a list of float16/32
    tensors (M, h, w); ``names`` and ``pixels`` (H, W) go with them."""

    def __init__(self, cache_dir: Path | str, split: str, variants=None, min_size: int = 0):
        base = Path(cache_dir) / split
        if variants is None:
            variants = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.exists() else []
        self.images: list[torch.Tensor] = []
        self.names: list[str] = []
        self.pixels: list[tuple[int, int]] = []
        self.variant_of: list[str] = []
        for variant in variants:
            vdir = base / variant
            for idx_path in sorted(vdir.glob("shard_*.json")):
                if idx_path.name.endswith(".tmp"):
                    continue
                idx = json.loads(idx_path.read_text())
                arr = np.load(idx_path.with_suffix(".npy"))
                M = int(idx["M"])
                for e in idx["entries"]:
                    h, w, off = e["h"], e["w"], e["offset"]
                    if min(h, w) < min_size:
                        continue
                    self.images.append(torch.from_numpy(arr[off:off + M * h * w].reshape(M, h, w)))
                    self.names.append(e["name"])
                    self.pixels.append(tuple(e["pixels"]))
                    self.variant_of.append(variant)
        if not self.images:
            raise FileNotFoundError(f"no cached latents under {base} for {variants}")
        areas = np.array([im.shape[1] * im.shape[2] for im in self.images], dtype=np.float64)
        self.weights = areas / areas.sum()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return int(self.images[0].shape[0])

    def sample(self, batch: int, size: int, rng: np.random.Generator, anchors: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, t): y float32 (B, M, size, size) random crops (images drawn by
        area among those at least size x size), t float32 (B,) ~ U[0, A-1]."""
        if size % 4:
            raise ValueError("crop size must be a multiple of 4 (h_a downsamples by 4)")
        ok = getattr(self, "_ok_size", None)
        if ok is None or ok[0] != size:
            mask = np.array([min(im.shape[1:]) >= size for im in self.images])
            if not mask.any():
                raise ValueError(f"no cached image has {size} x {size} latents")
            p = self.weights * mask
            self._ok_size = ok = (size, p / p.sum())
        idx = rng.choice(len(self.images), size=batch, p=ok[1])
        out = []
        for i in idx:
            im = self.images[i]
            _, h, w = im.shape
            top = int(rng.integers(0, h - size + 1))
            left = int(rng.integers(0, w - size + 1))
            out.append(im[:, top:top + size, left:left + size])
        y = torch.stack(out).float()
        t = torch.from_numpy(rng.uniform(0, anchors - 1, size=batch).astype(np.float32))
        return y, t


def cache_path(weights: Path | str = DEFAULT_WEIGHTS, cache: Path | str = DEFAULT_CACHE) -> Path:
    from . import lmw

    return Path(cache) / model_key(lmw.read(Path(weights)).model_id)


def info(out: Path) -> None:
    for split in ("val", "train"):
        base = out / split
        if not base.exists():
            continue
        for vdir in sorted(p for p in base.iterdir() if p.is_dir()):
            n = pos = size = 0
            for idx_path in vdir.glob("shard_*.json"):
                idx = json.loads(idx_path.read_text())
                n += len(idx["entries"])
                pos += sum(e["h"] * e["w"] for e in idx["entries"])
                size += idx_path.with_suffix(".npy").stat().st_size
            print(f"{split}/{vdir.name}: {n} images, {pos} latent positions, {size / 2**20:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--data", default=str(DEFAULT_ROOT))
    ap.add_argument("--cache", default=str(DEFAULT_CACHE))
    ap.add_argument("--variants", default=",".join(TRAIN_VARIANTS), help="train variants, in build order")
    ap.add_argument("--val-variants", default=",".join(VAL_VARIANTS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="first N images of each split (smoke tests)")
    ap.add_argument("--info", action="store_true")
    args = ap.parse_args(argv)
    if args.info:
        info(cache_path(args.weights, args.cache))
        return 0
    torch.set_num_threads(max(1, args.threads))
    from .export import load_hyperprior_weights

    model = load_hyperprior_weights(None, args.weights).eval()
    model_id = model._loaded_meta["model_id"]
    t0 = time.time()
    out = build(model, model_id, Path(args.data), Path(args.cache),
                [v for v in args.variants.split(",") if v], [v for v in args.val_variants.split(",") if v],
                log=lambda s: print(s, flush=True), limit=args.limit, weights=args.weights)
    print(f"[cache] done in {time.time() - t0:.0f} s: {out}", flush=True)
    info(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
