"""The linear baseline codec: an 8x8x3 KLT (PCA) with uniform quantization
and rANS coding through a fixed bank of discretized-Laplacian tables.

    python -m training.pca [--out python/lmcodec/models/pca.lmw] [--blocks 500000]
    python -m training.pca --eval DIR [--weights PATH] [--qualities 10,30,50,...]

Everything on the coding path is integer arithmetic, so the C++ codec
(src/cpp/core/pca_codec.cc) and the reference below (PcaReference) produce
identical payloads and pixels on every machine (docs/weights.md, "PCA model"):

* block vector: the 8x8 RGB block in (y, x, c) order, 192 integers
  d_j = pixel_j - mean_j (mean_j integer);
* transform: c_k = sum_j d_j * B[j][k] with B = round(KLT basis * 2^14)
  (int16); |c_k| < 2^31 so any summation order gives the same int32;
* quality: quality_x100 in [100, 10000] -> log-step ls (1/64 octave units)
  -> step_fp = step * 2^16 via a 64-entry exp2 table (integers);
* quantizer: q = sign(c) * floor((1024 |c| + r * step_fp) / (256 * step_fp))
  (deadzone rounding offset r/256);
* prediction: coefficients flagged in `pca.predict` code the residual against
  the MED (LOCO-I) predictor of the same coefficient in the left, top and
  top-left blocks;
* table of coefficient k: clamp(floor((lb_k - ls - base) / step), 0, T-1);
* reconstruction: chat = sign(q) (256 |q| - delta) step_fp (int64, 2^-24
  units), pixel = mean + round_half_even(sum_k chat_k B[j][k] / 2^38),
  clamped to 0..255.

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
from .tables import cdfs_from_freqs  # torch-free

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "python" / "lmcodec" / "models" / "pca.lmw"

BLOCK = 8
CHANNELS = 3
DIM = BLOCK * BLOCK * CHANNELS  # 192
BASIS_FRAC = 14
LS_UNIT = 64  # log2-step units per octave
EXP2_Q16 = [int(round(2.0 ** (j / LS_UNIT) * 65536)) for j in range(LS_UNIT)]
LS_LOWEST, LS_HIGHEST = -4 * LS_UNIT, 10 * LS_UNIT - 1  # step in [1/16, 1024)
CHAT_LIMIT = 1 << 28  # |q| * step_fp must not exceed this (|coefficient| <= 4096)

# defaults of the exported model
LOGSTEP_MAX = 528  # quality 1: step 2^8.25
LOGSTEP_MIN = 96  # quality 100: step 2^1.5
ROUND_Q8 = 96  # deadzone rounding offset r/256
RECON_Q8 = 0  # reconstruction offset delta/256
TABLE_STEP = 16  # quarter octave
TABLE_THETA_MIN = -8 * LS_UNIT  # smallest Laplacian scale (in steps): 2^-8
TABLE_THETA_MAX = 9 * LS_UNIT  # largest: 2^9
TABLE_HMAX = 1024  # largest |symbol| in a table (escape beyond)
TABLE_SUPPORT = 12.0  # H = ceil(12 theta)


class PcaError(ValueError):
    """Bad argument or corrupt payload in the Python reference."""


# ------------------------------------------------------ integer helpers --

def quality_to_logstep(quality_x100: int, ls_max: int, ls_min: int) -> int:
    q = int(quality_x100)
    if not 100 <= q <= 10000:
        raise PcaError(f"quality_x100 must be in [100, 10000], got {q}")
    return ls_max - ((q - 100) * (ls_max - ls_min) + 4950) // 9900


def logstep_to_stepfp(ls: int, exp2: list[int]) -> int:
    o, r = ls >> 6, ls & 63  # floor division by 64 (LS_UNIT)
    return (int(exp2[r]) << (o + 4)) >> 4


def table_index(lb: np.ndarray, ls: int, base: int, step: int, count: int) -> np.ndarray:
    d = np.asarray(lb, dtype=np.int64) - ls - base
    return np.clip(np.floor_divide(d, step), 0, count - 1).astype(np.int32)


def quantize(c: np.ndarray, step_fp: int, round_q8: int) -> np.ndarray:
    c = np.asarray(c, dtype=np.int64)
    m = (1024 * np.abs(c) + round_q8 * step_fp) // (256 * step_fp)
    return np.where(c < 0, -m, m)


def med_predict(q: np.ndarray) -> np.ndarray:
    """MED predictor over the last two axes (block rows, block columns)."""
    q = np.asarray(q, dtype=np.int64)
    pred = np.zeros_like(q)
    pred[..., 0, 1:] = q[..., 0, :-1]  # first row: left
    pred[..., 1:, 0] = q[..., :-1, 0]  # first column: top
    a = q[..., 1:, :-1]  # left
    b = q[..., :-1, 1:]  # top
    c = q[..., :-1, :-1]  # top-left
    mx, mn = np.maximum(a, b), np.minimum(a, b)
    pred[..., 1:, 1:] = np.where(c >= mx, mn, np.where(c <= mn, mx, a + b - c))
    return pred


def med_unpredict(res: np.ndarray) -> np.ndarray:
    """Inverse of residual = q - med_predict(q) over (rows, cols, K)."""
    by, bx, _ = res.shape
    q = np.zeros(res.shape, dtype=np.int64)
    r = res.astype(np.int64)
    for y in range(by):
        for x in range(bx):
            if y == 0:
                pred = q[0, x - 1] if x > 0 else 0
            elif x == 0:
                pred = q[y - 1, 0]
            else:
                a, b, c = q[y, x - 1], q[y - 1, x], q[y - 1, x - 1]
                mx, mn = np.maximum(a, b), np.minimum(a, b)
                pred = np.where(c >= mx, mn, np.where(c <= mn, mx, a + b - c))
            q[y, x] = pred + r[y, x]
    return q


def round_shift_half_even(acc: np.ndarray, shift: int) -> np.ndarray:
    fl = acc >> shift
    rem = acc - (fl << shift)
    half = 1 << (shift - 1)
    return fl + ((rem > half) | ((rem == half) & ((fl & 1) == 1)))


def to_blocks(rgb: np.ndarray) -> tuple[np.ndarray, int, int]:
    """HxWx3 uint8 -> (by*bx, 192) int64 blocks (edge-replicated padding)."""
    H, W, _ = rgb.shape
    by, bx = -(-H // BLOCK), -(-W // BLOCK)
    p = np.pad(rgb, ((0, by * BLOCK - H), (0, bx * BLOCK - W), (0, 0)), mode="edge")
    b = p.reshape(by, BLOCK, bx, BLOCK, CHANNELS).transpose(0, 2, 1, 3, 4).reshape(by * bx, DIM)
    return b.astype(np.int64), by, bx


def from_blocks(b: np.ndarray, by: int, bx: int, H: int, W: int) -> np.ndarray:
    img = b.reshape(by, bx, BLOCK, BLOCK, CHANNELS).transpose(0, 2, 1, 3, 4).reshape(by * BLOCK, bx * BLOCK, CHANNELS)
    return np.ascontiguousarray(img[:H, :W])


# ------------------------------------------------------- table bank ------

def laplace_pmf(theta: float, round_q8: int, hmax: int = TABLE_HMAX) -> tuple[np.ndarray, int]:
    """Discretized Laplacian (scale theta in steps) under the deadzone quantizer.
    Returns (pmf over -H..H, H)."""
    H = int(min(hmax, max(2, math.ceil(TABLE_SUPPORT * theta))))
    rr = round_q8 / 256.0
    n = np.arange(1, H + 1, dtype=np.float64)
    side = 0.5 * (np.exp(-(n - rr) / theta) - np.exp(-(n + 1 - rr) / theta))
    p0 = -np.expm1(-(1 - rr) / theta)
    pmf = np.concatenate([side[::-1], [p0], side])
    return pmf, H


def build_table_bank(round_q8: int) -> tuple[dict, dict[str, np.ndarray]]:
    from .tables import freq_tables

    count = (TABLE_THETA_MAX - TABLE_THETA_MIN) // TABLE_STEP + 1
    pmfs, offsets = [], []
    for t in range(count):
        theta = 2.0 ** ((TABLE_THETA_MIN + t * TABLE_STEP) / LS_UNIT)
        pmf, H = laplace_pmf(theta, round_q8)
        pmfs.append(pmf)
        offsets.append(-H)
    freqs, lengths = freq_tables(pmfs)
    meta = {"tables.count": count, "tables.base": TABLE_THETA_MIN - TABLE_STEP // 2, "tables.step": TABLE_STEP}
    tensors = {"tables.freqs": freqs, "tables.lengths": lengths, "tables.offsets": np.array(offsets, dtype=np.int32)}
    return meta, tensors


def table_bits(freqs: np.ndarray, lengths: np.ndarray, offsets: np.ndarray, span: int) -> np.ndarray:
    """(T, 2*span+1) code length in bits of symbols -span..span under each table."""
    T = len(lengths)
    out = np.zeros((T, 2 * span + 1))
    v = np.arange(-span, span + 1)
    pos = 0
    for t in range(T):
        n = int(lengths[t])
        f = freqs[pos:pos + n].astype(np.float64)
        pos += n
        bits = -np.log2(f / 65536.0)
        lo, hi = int(offsets[t]), int(offsets[t]) + n - 2
        inside = (v >= lo) & (v <= hi)
        dist = np.where(v < lo, lo - v, v - hi)
        nb = np.floor(np.log2(np.maximum(dist, 1) + 1))
        out[t] = np.where(inside, bits[np.clip(v - lo, 0, n - 2)], bits[n - 1] + 6 + nb)
    return out


# -------------------------------------------------------- the model ------

class PcaModel:
    def __init__(self, meta: dict, tensors: dict[str, np.ndarray]):
        if meta.get("model") != "pca":
            raise PcaError("not a pca model")
        self.meta = meta
        self.mean = np.asarray(tensors["pca.mean"], dtype=np.int64).reshape(DIM)
        self.basis = np.asarray(tensors["pca.basis"], dtype=np.int64).reshape(DIM, DIM)  # [j][k]
        self.lb = np.asarray(tensors["pca.logscale"], dtype=np.int64).reshape(DIM)
        self.predict = np.asarray(tensors["pca.predict"], dtype=np.int32).reshape(DIM) != 0
        self.ls_max = int(meta["quant.logstep_max"])
        self.ls_min = int(meta["quant.logstep_min"])
        self.exp2 = [int(v) for v in meta["quant.exp2_q16"]]
        self.round_q8 = int(meta["quant.round_q8"])
        self.recon_q8 = int(meta["quant.recon_q8"])
        self.t_count = int(meta["tables.count"])
        self.t_base = int(meta["tables.base"])
        self.t_step = int(meta["tables.step"])
        self.freqs = np.asarray(tensors["tables.freqs"], dtype=np.uint16)
        self.lengths = np.asarray(tensors["tables.lengths"], dtype=np.int32)
        self.offsets = np.asarray(tensors["tables.offsets"], dtype=np.int32)
        self.cdfs, self.cdf_lengths = cdfs_from_freqs(self.freqs, self.lengths)

    def params(self, quality_x100: int) -> tuple[int, int, np.ndarray]:
        ls = quality_to_logstep(quality_x100, self.ls_max, self.ls_min)
        step_fp = logstep_to_stepfp(ls, self.exp2)
        idx = table_index(self.lb, ls, self.t_base, self.t_step, self.t_count)
        return ls, step_fp, idx


class PcaReference(PcaModel):
    """Bit-exact Python reference of the C++ PcaCodec (payload = one rANS stream)."""

    def __init__(self, path: str | Path = DEFAULT_OUT):
        wf = lmw.read(path)
        super().__init__(wf.meta, wf.tensors)

    def quantized(self, rgb: np.ndarray, quality_x100: int) -> tuple[np.ndarray, int, int]:
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise PcaError("rgb must be a non-empty HxWx3 uint8 array")
        _, step_fp, _ = self.params(quality_x100)
        blocks, by, bx = to_blocks(rgb)
        c = (blocks - self.mean) @ self.basis
        return quantize(c, step_fp, self.round_q8).reshape(by, bx, DIM), by, bx

    def encode_payload(self, rgb: np.ndarray, quality_x100: int) -> bytes:
        from lmcodec import _core

        _, _, idx = self.params(quality_x100)
        q, by, bx = self.quantized(rgb, quality_x100)
        sym = q.copy()
        p = self.predict
        sym[:, :, p] = q[:, :, p] - med_predict(q[:, :, p].transpose(2, 0, 1)).transpose(1, 2, 0)
        symbols = sym.reshape(-1).astype(np.int32)
        indexes = np.tile(idx, by * bx).astype(np.int32)
        return _core.rans_encode(symbols, indexes, self.cdfs, self.cdf_lengths, self.offsets)

    def decode_payload(self, payload: bytes, width: int, height: int, quality_x100: int) -> np.ndarray:
        from lmcodec import _core

        if width < 1 or height < 1:
            raise PcaError("empty image")
        _, step_fp, idx = self.params(quality_x100)
        by, bx = -(-height // BLOCK), -(-width // BLOCK)
        indexes = np.tile(idx, by * bx).astype(np.int32)
        sym = np.asarray(_core.rans_decode(bytes(payload), indexes, self.cdfs, self.cdf_lengths, self.offsets),
                         dtype=np.int64).reshape(by, bx, DIM)
        q = sym.copy()
        p = self.predict
        if p.any():
            q[:, :, p] = med_unpredict(sym[:, :, p])
        if np.any(np.abs(q) * step_fp > CHAT_LIMIT):
            raise PcaError("corrupt payload: coefficient out of range")
        mag = np.abs(q) * 256 - self.recon_q8
        chat = np.where(q > 0, mag, np.where(q < 0, -mag, 0)) * step_fp  # 2^-24 units
        acc = (chat.reshape(-1, DIM) @ self.basis.T)  # 2^-38 units
        pix = self.mean + round_shift_half_even(acc, 24 + BASIS_FRAC)
        return from_blocks(np.clip(pix, 0, 255).astype(np.uint8), by, bx, height, width)


# ------------------------------------------------------------ fitting ----

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
                payload = _core.pca_encode(str(weights), rgb, q100)
                out = np.asarray(_core.pca_decode(str(weights), payload, W, H, q100))
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
