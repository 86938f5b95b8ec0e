"""Compare two exported weights files on held-out crops, with real streams.

    python tools/compare_weights.py BASE.lmw CANDIDATE.lmw [--threads 2] [--no-rdo]

Encodes the validation crops of the training set (``PatchBank(split="val")``,
24 centre crops of 256 px: held out from training, never Kodak) with the C++
codec at 11 qualities under each weights file, decodes them, and prints both
rate-distortion curves and the BD-rate (PSNR) of the candidate against the
base, on all crops and on the even / odd halves (negative = the candidate
needs fewer bits for the same PSNR). This is the check a new export must pass
before it replaces the shipped weights (README, "Training").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from lmcodec import _core  # noqa: E402
from lmcodec.metrics import bd_rate  # noqa: E402
import numpy as np  # noqa: E402
from tune_rdo import QUALITIES, heldout_crops  # noqa: E402


def per_image(model, rdo: bool, images, threads: int) -> np.ndarray:
    """[image][quality] -> (bpp, PSNR) of a real stream."""
    out = np.zeros((len(images), len(QUALITIES), 2))
    for i, im in enumerate(images):
        for j, q in enumerate(QUALITIES):
            s = bytes(model.encode(im, q, threads, 0, rdo))
            x = np.asarray(model.decode(s, threads), dtype=np.float64)
            out[i, j] = len(s) * 8 / (im.shape[0] * im.shape[1]), 10 * np.log10(255.0**2 / np.mean((x - im) ** 2))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("candidate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-rdo", action="store_true", help="plain rounding on both sides")
    args = ap.parse_args(argv)

    images = heldout_crops()
    sets = {"all": slice(None), "even": slice(0, None, 2), "odd": slice(1, None, 2)}
    models = {"base": _core.Model(args.base), "candidate": _core.Model(args.candidate)}
    points = {m: per_image(models[m], not args.no_rdo, images, args.threads) for m in models}
    # per set: the mean bpp and mean PSNR over its crops at each quality
    curves = {(m, s): (list(points[m][sl, :, 0].mean(0)), list(points[m][sl, :, 1].mean(0)))
              for m in models for s, sl in sets.items()}
    for m in models:
        r, p = curves[(m, "all")]
        print(f"{m:9s} " + "  ".join(f"q{q}: {a:.3f} bpp {b:.2f} dB" for q, a, b in zip(QUALITIES, r, p)))
    res = {s: bd_rate(*curves[("base", s)], *curves[("candidate", s)]) for s in sets}
    print("BD-rate (PSNR) of candidate vs base: " + ", ".join(f"{s} {v:+.3f} %" for s, v in res.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
