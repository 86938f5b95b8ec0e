"""Tune the RDO quantiser's two factors (alpha, scale power) on held-out crops.

    python tools/tune_rdo.py [--weights python/lmcodec/models/hyperprior.lmw]
                             [--alphas 2,3,4] [--powers 0.6,1.0,1.4]

For every (alpha, power) pair it writes a copy of the weights file whose
rdo.cost table is rescaled to that alpha (the table is linear in alpha, so
the measurement behind it is reused) and whose rdo.scale_power is that power,
encodes the validation crops of the training set (``PatchBank(split="val")``,
24 centre crops of 256 px: held out from training, never Kodak) with the C++
codec at 11 qualities, with and without RDO, and prints the BD-rate (PSNR)
of RDO against plain rounding on the even and on the odd half of the crops.
Choose on one half, check on the other; then set RDO_ALPHA and
RDO_SCALE_POWER in training/export.py and re-export (or ``--add-rdo``).
The copies go to a temporary folder and are deleted.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmcodec import _core  # noqa: E402
from lmcodec.metrics import bd_rate  # noqa: E402
from training import lmw  # noqa: E402

QUALITIES = [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


def heldout_crops(count: int = 24, size: int = 256) -> list[np.ndarray]:
    from training.data import PatchBank

    crops = PatchBank(split="val").fixed_crops(size, count)
    return [np.ascontiguousarray((c.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)) for c in crops]


def curve(model, rdo: bool, images, threads: int) -> tuple[list[float], list[float]]:
    rates, psnrs = [], []
    for q in QUALITIES:
        r = p = 0.0
        for im in images:
            s = bytes(model.encode(im, q, threads, 0, rdo))
            x = np.asarray(model.decode(s, threads), dtype=np.float64)
            r += len(s) * 8 / (im.shape[0] * im.shape[1])
            p += 10 * np.log10(255.0**2 / np.mean((x - im) ** 2))
        rates.append(r / len(images))
        psnrs.append(p / len(images))
    return rates, psnrs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(ROOT / "python" / "lmcodec" / "models" / "hyperprior.lmw"))
    ap.add_argument("--alphas", default="2,3,4")
    ap.add_argument("--powers", default="0.6,1.0,1.4")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    wf = lmw.read(args.weights)
    unit = np.asarray(wf.tensors["rdo.cost"], np.float32) / float(wf.meta["rdo.alpha"])
    images = heldout_crops()
    halves = {"even": images[0::2], "odd": images[1::2]}
    base = _core.Model(args.weights)
    plain = {h: curve(base, False, ims, args.threads) for h, ims in halves.items()}
    print(f"{args.weights}: now alpha {wf.meta['rdo.alpha']}, power {wf.meta['rdo.scale_power']}")
    print("BD-rate (PSNR) of RDO vs plain rounding, real streams; negative = fewer bits")
    with tempfile.TemporaryDirectory() as tmp:
        for a, p in itertools.product([float(v) for v in args.alphas.split(",")],
                                      [float(v) for v in args.powers.split(",")]):
            tensors = dict(wf.tensors)
            tensors["rdo.cost"] = (unit * a).astype(np.float32)
            meta = dict(wf.meta)
            meta["rdo.alpha"], meta["rdo.scale_power"] = a, p
            path = Path(tmp) / f"a{a}_p{p}.lmw"
            lmw.write(path, meta, tensors)
            model = _core.Model(str(path))
            res = [bd_rate(*plain[h], *curve(model, True, ims, args.threads)) for h, ims in halves.items()]
            print(f"alpha {a:5.2f}  power {p:4.2f}:  even {res[0]:+.3f} %  odd {res[1]:+.3f} %  "
                  f"mean {np.mean(res):+.3f} %", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
