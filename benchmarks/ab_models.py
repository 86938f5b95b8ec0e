"""Two weights files side by side on Kodak: size, PSNR and encode / decode time.

    python benchmarks/ab_models.py A.lmw B.lmw [--images 8] [--rounds 5] [--quality 32] [--threads 2]
                                   [--repeat 2] [--json out.json]

Same build, same process: each round times every image under A then B (B
then A in the next round, so that neither always runs second), best of
--repeat per image. Reported per model: the median over rounds of the summed
encode / decode ms, the mean bpp and PSNR at that quality, and B/A as the
median of per-round ratios (this machine is noisy; alternating rounds put its
slow and fast stretches on both alike). Kodak is for evaluation only: this
times and reports, it tunes nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lmcodec import _core

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"


def run(model, images, quality, threads, repeat):
    enc = dec = 0.0
    bits = psnr = 0.0
    for img in images:
        be = bd = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            data = bytes(model.encode(img, quality, threads, 0, True))
            t1 = time.perf_counter()
            out = np.asarray(model.decode(data, threads))
            t2 = time.perf_counter()
            be, bd = min(be, t1 - t0), min(bd, t2 - t1)
        enc += be * 1e3
        dec += bd * 1e3
        bits += len(data) * 8 / (img.shape[0] * img.shape[1])
        psnr += 10 * np.log10(255.0**2 / np.mean((out.astype(np.float64) - img) ** 2))
    n = len(images)
    return enc, dec, bits / n, psnr / n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quality", type=float, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    paths = sorted(KODAK.glob("*.png"))[:a.images]
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    models = {"A": _core.Model(a.a), "B": _core.Model(a.b)}
    for m in models.values():  # warm up
        run(m, images[:1], a.quality, a.threads, 1)
    res = {"A": [], "B": []}
    for r in range(a.rounds):
        for k in ("A", "B") if r % 2 == 0 else ("B", "A"):
            res[k].append(run(models[k], images, a.quality, a.threads, a.repeat))
    out = {"images": len(images), "quality": a.quality, "threads": a.threads, "rounds": a.rounds,
           "kernel_path": _core.kernel_path(), "a": a.a, "b": a.b}
    for k in ("A", "B"):
        e = statistics.median(v[0] for v in res[k])
        d = statistics.median(v[1] for v in res[k])
        out[k] = {"encode_ms_per_image": e / len(images), "decode_ms_per_image": d / len(images),
                  "bpp": res[k][0][2], "psnr": res[k][0][3]}
    out["B/A encode"] = statistics.median(b[0] / x[0] for x, b in zip(res["A"], res["B"]))
    out["B/A decode"] = statistics.median(b[1] / x[1] for x, b in zip(res["A"], res["B"]))
    print(json.dumps(out, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
