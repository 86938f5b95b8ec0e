"""Prototype (not shipped): estimate the bpp of candidate lossless designs.

Ideal static per-context coding cost (empirical conditional entropy of the
residual given the context, plus ~12 bits per used table entry for sending
the tables) on held-out WebP-lossless training images (no JPEG artifacts):

  python tools/lossless_prototype.py [--n 16] [--base]

Candidates (all vectorised; lossless, so every residual is known):
  colour:    rgb | sub-green (R-G, B-G) | YCoCg-R
  predictor: MED (LOCO-I) | GAP (CALIC) | W | (N+W)/2
  context:   quantised activity of the causal neighbourhood (gradients and
             neighbouring residual magnitudes); chroma planes also see the
             co-located residual of the plane coded before them.
  --base:    (a) lmcodec lossy base at quality q, residual x - x_hat coded
             with a context of x_hat's local activity and the causal residual
             neighbours (base bytes counted).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"


def images(n: int):
    files = sorted((TRAIN / "urban100").glob("*.webp"))[-n // 2:] + sorted((TRAIN / "sun_hays80_half").glob("*.webp"))[-n // 2:]
    for f in files:
        yield f.name, np.asarray(Image.open(f).convert("RGB"), dtype=np.int32)


def shifted(p):
    """W, N, NW, NE, WW, NN with edge replication (causal)."""
    pad = np.pad(p, ((2, 0), (2, 2)), mode="edge")
    h, w = p.shape
    at = lambda dy, dx: pad[2 + dy:2 + dy + h, 2 + dx:2 + dx + w]  # noqa: E731
    return at(0, -1), at(-1, 0), at(-1, -1), at(-1, 1), at(0, -2), at(-2, 0), at(-1, 2), at(-2, 1)


def predict(p, kind):
    W, N, NW, NE, WW, NN, NNE_, NNE = shifted(p)
    if kind == "W":
        return W
    if kind == "avg":
        return (N + W + 1) >> 1
    if kind == "med":
        mx, mn = np.maximum(W, N), np.minimum(W, N)
        return np.where(NW >= mx, mn, np.where(NW <= mn, mx, W + N - NW))
    if kind == "gap":
        dh = np.abs(W - WW) + np.abs(N - NW) + np.abs(N - NE)
        dv = np.abs(W - NW) + np.abs(N - NN) + np.abs(NE - NNE)
        base = (W + N) / 2 + (NE - NW) / 4
        pr = np.where(dv - dh > 32, (base + W) / 2, base)
        pr = np.where(dv - dh > 80, W, pr)
        pr = np.where(dh - dv > 32, (base + N) / 2, pr)
        pr = np.where(dh - dv > 80, N, pr)
        pr = np.where(dv - dh > 8, np.where(dv - dh > 32, pr, (3 * base + W) / 4), pr)
        pr = np.where(dh - dv > 8, np.where(dh - dv > 32, pr, (3 * base + N) / 4), pr)
        return np.floor(pr + 0.5).astype(np.int32)
    raise ValueError(kind)


def quant(a, edges):
    return np.searchsorted(np.asarray(edges), a, side="right")


EDGES = [0, 1, 2, 3, 5, 7, 10, 14, 20, 28, 40, 56, 80, 112, 160]


def cond_bits(r, ctx):
    """Empirical sum of -log2 p(r | ctx) plus table cost."""
    bits = 0.0
    for c in np.unique(ctx):
        v = r[ctx == c]
        _, cnt = np.unique(v, return_counts=True)
        p = cnt / cnt.sum()
        bits += -(cnt * np.log2(p)).sum() + 12 * len(cnt)
    return bits


def activity(p, r):
    W, N, NW, NE, *_ = shifted(p)
    rW, rN, rNW, rNE, *_ = shifted(np.abs(r))
    grad = np.abs(W - NW) + np.abs(N - NW) + np.abs(N - NE)
    return grad, rW + rN + (rNW + rNE) // 2


def plane_bits(p, kind, extra=None, ctx_mode="both"):
    r = p - predict(p, kind)
    grad, ract = activity(p, r)
    a = {"grad": grad * 2, "res": ract * 3, "both": grad + 2 * ract}[ctx_mode]
    if extra is not None:
        a = a + 2 * extra
    ctx = quant(a // 3, EDGES)
    return cond_bits(r, ctx), np.abs(r)


def colour(img, kind):
    R, G, B = (img[..., i] for i in range(3))
    if kind == "rgb":
        return [G, R, B]
    if kind == "subg":
        return [G, R - G, B - G]
    if kind == "ycocg":
        Co = R - B
        t = B + (Co >> 1)
        Cg = G - t
        Y = t + (Cg >> 1)
        return [Y, Co, Cg]
    raise ValueError(kind)


def design_bits(img, col, pred, ctx_mode="both", link=True):
    total, prev = 0.0, None
    for p in colour(img, col):
        b, absr = plane_bits(p, pred, prev if link else None, ctx_mode)
        total += b
        prev = absr if prev is None else (prev + absr) // 2
    return total


def base_bits(img, quality):
    import lmcodec
    data = lmcodec.encode(img.astype(np.uint8), quality=quality)
    xh = lmcodec.decode(data).astype(np.int32)
    total, prev = 8.0 * len(data), None
    for c in (1, 0, 2):
        p, r = xh[..., c], img[..., c] - xh[..., c]
        W, N, NW, NE, *_ = shifted(p)
        grad = np.abs(W - NW) + np.abs(N - NW) + np.abs(N - NE) + np.abs(p - W) + np.abs(p - N)
        rW, rN, rNW, rNE, *_ = shifted(np.abs(r))
        # the residual's own causal neighbours, also as a linear predictor
        sW, sN, *_ = shifted(r)
        pr = (sW + sN) // 2
        a = grad + 2 * (rW + rN) + (0 if prev is None else 2 * prev)
        ctx = quant(a // 3, EDGES)
        b1 = cond_bits(r, ctx)
        b2 = cond_bits(r - pr, ctx)
        total += min(b1, b2)
        prev = np.abs(r)
    return total, 8.0 * len(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--base", action="store_true")
    args = ap.parse_args()
    designs = [("rgb", "med"), ("subg", "med"), ("ycocg", "med"), ("ycocg", "gap"), ("ycocg", "avg"),
               ("subg", "gap")]
    sums = {d: 0.0 for d in designs}
    extra = {"ycocg/med ctx=grad": 0.0, "ycocg/med ctx=res": 0.0, "ycocg/med unlinked": 0.0}
    bases = {q: 0.0 for q in (90, 100)} if args.base else {}
    npx = 0
    for name, img in images(args.n):
        h, w, _ = img.shape
        npx += h * w
        line = [name, f"{w}x{h}"]
        for d in designs:
            b = design_bits(img, *d)
            sums[d] += b
            line.append(f"{d[0]}/{d[1]} {b / (h * w):.3f}")
        extra["ycocg/med ctx=grad"] += design_bits(img, "ycocg", "med", "grad")
        extra["ycocg/med ctx=res"] += design_bits(img, "ycocg", "med", "res")
        extra["ycocg/med unlinked"] += design_bits(img, "ycocg", "med", "both", link=False)
        for q in bases:
            tb, bb = base_bits(img, q)
            bases[q] += tb
            line.append(f"base q{q} {tb / (h * w):.3f} (base {bb / (h * w):.3f})")
        print("  ".join(line), flush=True)
    print(f"\nmean over {args.n} images, bits per pixel (all pixels pooled):")
    for d, b in sums.items():
        print(f"  {d[0]:6s} {d[1]:4s} {b / npx:.3f}")
    for k, b in extra.items():
        print(f"  {k:24s} {b / npx:.3f}")
    for q, b in bases.items():
        print(f"  lossy base q{q} + residual {b / npx:.3f}")


if __name__ == "__main__":
    main()
