"""The linear baseline codec's fitting, evaluation and command line: fits the
8x8x3 KLT, the quantiser and the table bank on training crops and writes the
weights file; the reference codec itself (integer, bit-exact with
src/cpp/core/pca_codec.cc) is training/pca_reference.py.

    python -m training.pca [--out python/lmcodec/models/pca.lmw] [--blocks 500000]
    python -m training.pca --eval DIR [--weights PATH] [--qualities 10,30,50,...]

Fitting uses the training split of data.PatchBank's image list (Kodak is
never read except by --eval).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import numpy as np

from . import lmw
from .pca_reference import (
    BASIS_FRAC, BLOCK, CHANNELS, CHAT_LIMIT, DIM, EXP2_Q16, LOGSTEP_MAX, LOGSTEP_MIN, LS_HIGHEST, LS_LOWEST,
    PcaReference, RECON_Q8, ROUND_Q8, SHIPPED, TABLE_HMAX, build_table_bank, logstep_to_stepfp,
    med_predict, quantize, table_bits, table_index,
)

DEFAULT_OUT = SHIPPED


def _train_files() -> list[Path]:
    from .data import DEFAULT_ROOT, VAL_EVERY, list_images
    files = list_images(DEFAULT_ROOT)
    return [f for i, f in enumerate(files) if i % VAL_EVERY != 0]


def _val_files() -> list[Path]:
    from .data import DEFAULT_ROOT, VAL_EVERY, list_images
    files = list_images(DEFAULT_ROOT)
    return [f for i, f in enumerate(files) if i % VAL_EVERY == 0]


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def sample_block_grids(files: list[Path], grid: int, crops_per_image: int, seed: int = 0) -> np.ndarray:
    """(n_crops, grid, grid, 192) uint8 block grids from random crops; JPEG
    sources are first downscaled by a random factor in [0.5, 1]."""
    from PIL import Image

    rng = random.Random(seed)
    size = grid * BLOCK
    out = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            if f.suffix.lower() in (".jpg", ".jpeg"):
                s = rng.uniform(0.5, 1.0)
                w, h = max(1, round(im.width * s)), max(1, round(im.height * s))
                im = im.resize((w, h), Image.LANCZOS)
            arr = np.asarray(im)
        H, W, _ = arr.shape
        if H < size or W < size:
            continue
        for _ in range(crops_per_image):
            y, x = rng.randint(0, H - size), rng.randint(0, W - size)
            c = arr[y:y + size, x:x + size]
            if rng.random() < 0.5:
                c = c[:, ::-1]
            out.append(c.reshape(grid, BLOCK, grid, BLOCK, CHANNELS).transpose(0, 2, 1, 3, 4).reshape(grid, grid, DIM))
    return np.stack(out)


def fit_klt(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """blocks (N, 192) uint8 -> (integer mean, int16 basis [j][k], eigenvalues)."""
    N = len(blocks)
    s = np.zeros(DIM)
    for i in range(0, N, 65536):
        s += blocks[i:i + 65536].astype(np.float64).sum(0)
    mean = s / N
    cov = np.zeros((DIM, DIM))
    for i in range(0, N, 65536):
        d = blocks[i:i + 65536].astype(np.float64) - mean
        cov += d.T @ d
    cov /= N
    ev, vec = np.linalg.eigh(cov)
    order = np.argsort(ev)[::-1]
    ev, vec = ev[order], vec[:, order]
    # deterministic sign: the largest-magnitude entry of each vector positive
    sign = np.sign(vec[np.argmax(np.abs(vec), axis=0), np.arange(DIM)])
    vec = vec * sign
    basis = np.round(vec * (1 << BASIS_FRAC)).astype(np.int16)
    return np.round(mean).astype(np.int16), basis, ev


def fit_tables(coefs: np.ndarray, grid_shape: tuple[int, int, int], bits: np.ndarray, span: int,
               round_q8: int, fit_ls: list[int], exp2: list[int], t_base: int, t_step: int,
               t_count: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Per coefficient, pick the log-scale lb_k and the prediction flag that
    minimise the code length of the training coefficients, summed over the
    fitting steps (each step normalised by its best total)."""
    S = len(fit_ls)
    # costs[s, k, flag, table]
    costs = np.zeros((S, DIM, 2, t_count))
    for k in range(DIM):
        ck = coefs[:, k].reshape(grid_shape)
        for si, ls in enumerate(fit_ls):
            q = quantize(ck, logstep_to_stepfp(ls, exp2), round_q8)
            for flag, sym in enumerate((q, q - med_predict(q))):
                u, cnt = np.unique(sym, return_counts=True)
                inside = np.abs(u) <= span
                c = bits[:, u[inside] + span] @ cnt[inside]
                for v, n in zip(u[~inside], cnt[~inside]):  # very rare
                    c += n * (bits[:, -1 if v > 0 else 0] + 2 * math.log2(abs(v) / span))
                costs[si, k, flag] = c
    best = costs.min(axis=3).min(axis=2).sum(axis=1)  # per step
    w = 1.0 / best
    lo = min(fit_ls) + t_base - t_step
    hi = max(fit_ls) + t_base + (t_count + 1) * t_step
    cand = np.arange(lo, hi + 1)
    idx = np.stack([table_index(cand, ls, t_base, t_step, t_count) for ls in fit_ls])  # (S, C)
    lb = np.zeros(DIM, dtype=np.int32)
    pred = np.zeros(DIM, dtype=np.int32)
    total = 0.0
    for k in range(DIM):
        tot = np.zeros((2, len(cand)))
        for si in range(S):
            tot += w[si] * costs[si, k][:, idx[si]]
        flag, ci = np.unravel_index(np.argmin(tot), tot.shape)
        # centre lb inside the run of equally good candidates
        end = ci
        while end + 1 < len(cand) and tot[flag, end + 1] == tot[flag, ci]:
            end += 1
        lb[k] = cand[(ci + end) // 2]
        pred[k] = flag
        total += tot[flag, ci]
    return lb, pred, total / S


def fit(args) -> None:
    t0 = time.time()
    files = _train_files()[:args.limit]
    print(f"{len(files)} training images")
    grids = sample_block_grids(files, args.grid, args.crops, seed=args.seed)
    G = grids.shape[1]
    blocks = grids.reshape(-1, DIM)
    print(f"{len(blocks)} blocks from {len(grids)} crops ({time.time() - t0:.0f}s)")
    mean, basis, ev = fit_klt(blocks)
    # the decoder's coefficient bound holds for everything the encoder makes
    l1 = int(np.abs(basis.astype(np.int64)).sum(0).max())
    assert 4 * 255 * l1 + (logstep_to_stepfp(args.ls_max, EXP2_Q16) * args.round_q8 + 255) // 256 <= CHAT_LIMIT
    print("top eigenvalues", np.round(ev[:8], 1), "energy in first 16:", ev[:16].sum() / ev.sum())
    coefs = np.empty((len(blocks), DIM), dtype=np.int32)
    for i in range(0, len(blocks), 65536):
        coefs[i:i + 65536] = (blocks[i:i + 65536].astype(np.int32) - mean.astype(np.int32)) @ basis.astype(np.int32)
    coefs = np.asfortranarray(coefs)
    tmeta, ttens = build_table_bank(args.round_q8)
    span = 4 * TABLE_HMAX
    bits = table_bits(ttens["tables.freqs"], ttens["tables.lengths"], ttens["tables.offsets"], span)
    fit_ls = list(np.linspace(args.ls_min, args.ls_max, 7).round().astype(int))
    lb, pred, avg = fit_tables(coefs, (len(grids), G, G), bits, span, args.round_q8, fit_ls, EXP2_Q16,
                               tmeta["tables.base"], tmeta["tables.step"], tmeta["tables.count"])
    print(f"tables fitted ({time.time() - t0:.0f}s); predicted coefficients: {np.flatnonzero(pred).tolist()}")
    meta = {
        "model": "pca",
        "pca.block": BLOCK,
        "pca.channels": CHANNELS,
        "pca.basis_frac": BASIS_FRAC,
        "quant.logstep_max": int(args.ls_max),
        "quant.logstep_min": int(args.ls_min),
        "quant.exp2_q16": EXP2_Q16,
        "quant.round_q8": int(args.round_q8),
        "quant.recon_q8": int(args.recon_q8),
        **tmeta,
        "train.blocks": int(len(blocks)),
        "train.images": int(len(files)),
    }
    tensors = {
        "pca.mean": mean,
        "pca.basis": basis,
        "pca.logscale": lb,
        "pca.predict": pred,
        **ttens,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    mid = lmw.write(args.out, meta, tensors)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes, id {mid.hex()}) in {time.time() - t0:.0f}s")


# --------------------------------------------------------- evaluation ----

def evaluate(weights: Path, files: list[Path], qualities: list[float], use_cpp: bool = True) -> list[tuple]:
    ref = PcaReference(weights)
    if use_cpp:
        from lmcodec import _core
    rows = []
    for qual in qualities:
        q100 = int(round(qual * 100))
        bpps, psnrs = [], []
        for f in files:
            rgb = _load_rgb(f)
            H, W, _ = rgb.shape
            if use_cpp:
                payload = _core.internal.pca_encode(str(weights), rgb, q100)
                out = np.asarray(_core.internal.pca_decode(str(weights), payload, W, H, q100))
            else:
                payload = ref.encode_payload(rgb, q100)
                out = ref.decode_payload(payload, W, H, q100)
            mse = np.mean((out.astype(np.float64) - rgb) ** 2)
            bpps.append(len(payload) * 8 / (H * W))
            psnrs.append(10 * math.log10(255 ** 2 / max(mse, 1e-10)))
        rows.append((qual, float(np.mean(bpps)), float(np.mean(psnrs))))
        print(f"quality {qual:6.1f}  bpp {rows[-1][1]:.4f}  PSNR {rows[-1][2]:.3f} dB", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--grid", type=int, default=16, help="crop size in blocks")
    ap.add_argument("--crops", type=int, default=2, help="crops per training image")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--ls-max", type=int, default=LOGSTEP_MAX)
    ap.add_argument("--ls-min", type=int, default=LOGSTEP_MIN)
    ap.add_argument("--round-q8", type=int, default=ROUND_Q8)
    ap.add_argument("--recon-q8", type=int, default=RECON_Q8)
    ap.add_argument("--eval", default=None, help="evaluate on the images of this folder (or 'val')")
    ap.add_argument("--weights", default=str(DEFAULT_OUT))
    ap.add_argument("--qualities", default="10,25,40,55,70,85,95")
    ap.add_argument("--python", action="store_true", help="evaluate with the Python reference")
    args = ap.parse_args()
    if not (LS_LOWEST <= args.ls_min <= args.ls_max <= LS_HIGHEST):
        raise SystemExit(f"need {LS_LOWEST} <= ls-min <= ls-max <= {LS_HIGHEST}")
    if not (0 <= args.round_q8 <= 128 and 0 <= args.recon_q8 < 256):
        raise SystemExit("bad round/recon offsets")
    if args.eval:
        files = _val_files() if args.eval == "val" else sorted(Path(args.eval).glob("*.png"))
        evaluate(Path(args.weights), files, [float(v) for v in args.qualities.split(",")], not args.python)
    else:
        fit(args)


if __name__ == "__main__":
    main()
