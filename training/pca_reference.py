"""The linear baseline codec's reference: an 8x8x3 KLT (PCA) with uniform
quantization and rANS coding through a fixed bank of discretized-Laplacian
tables. Fitting, evaluation and the command line are in training/pca.py.

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
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import lmw
from .tables import cdfs_from_freqs  # torch-free

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "python" / "lmcodec" / "models" / "pca.lmw"  # the committed PCA weights

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

    def __init__(self, path: str | Path = SHIPPED):
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
        return _core.internal.rans_encode(symbols, indexes, self.cdfs, self.cdf_lengths, self.offsets)

    def decode_payload(self, payload: bytes, width: int, height: int, quality_x100: int) -> np.ndarray:
        from lmcodec import _core

        if width < 1 or height < 1:
            raise PcaError("empty image")
        _, step_fp, idx = self.params(quality_x100)
        by, bx = -(-height // BLOCK), -(-width // BLOCK)
        indexes = np.tile(idx, by * bx).astype(np.int32)
        sym = np.asarray(_core.internal.rans_decode(bytes(payload), indexes, self.cdfs, self.cdf_lengths, self.offsets),
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
