"""The integer hyper-synthesis (h_s): its fixed-point calibration at export,
the exact reference implementation the C++ kernels must match bit for bit
(docs/weights.md), the scale-index rule, and loading it back as a float
network for training.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .models import MeanScaleHyperprior
from .tables import LOG_SCALE_MIN, NUM_SCALES, SCALE_STEP

HS_FRAC_OUT = 12


ACT_MAX = 32767


def wrap_i32(x: torch.Tensor) -> torch.Tensor:
    """Reduce exact integers (held in int64) modulo 2^32 into int32 range."""
    return ((x + 2**31) % 2**32) - 2**31


class IntHyperSynthesis:
    """The integer h_s exactly as docs/weights.md defines it (reference
    implementation; the C++ kernels must match it bit for bit).

    Convolutions run in float64, which is exact here: every product is below
    2^30 in magnitude and every sum below 2^53."""

    def __init__(self, ops: list[list], tensors: dict[str, np.ndarray], meta: dict):
        self.ops = ops
        self.layers = []
        for i, op in enumerate(ops):
            if op[0] in ("conv", "deconv"):
                w = torch.from_numpy(np.asarray(tensors[f"h_s.{i}.weight"], dtype=np.float64))
                b = torch.from_numpy(np.asarray(tensors[f"h_s.{i}.bias"], dtype=np.int64))
                self.layers.append((op, w, b, int(meta[f"hs.shift.{i}"]), int(meta[f"hs.lo.{i}"]), int(meta[f"hs.hi.{i}"])))
        self.frac_out = int(meta["hs.frac_out"])

    def __call__(self, z_hat: torch.Tensor) -> torch.Tensor:
        a = torch.clamp(z_hat.to(torch.int64), -ACT_MAX, ACT_MAX)
        for op, w, b, shift, lo, hi in self.layers:
            x = a.to(torch.float64)
            if op[0] == "conv":
                acc = F.conv2d(x, w, None, stride=op[4], padding=op[3] // 2)
            else:
                acc = F.conv_transpose2d(x, w, None, stride=op[4], padding=op[3] // 2, output_padding=op[4] - 1)
            acc = acc.to(torch.int64) + b.view(1, -1, 1, 1)
            acc = wrap_i32(acc)
            if shift > 0:
                acc = wrap_i32(acc + (1 << (shift - 1)))
            v = torch.div(acc, 1 << shift, rounding_mode="floor")  # arithmetic shift
            a = torch.clamp(v, lo, hi)
        return a  # int64 holding int32 values

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        M = out.shape[1] // 2
        return out[:, :M], out[:, M:]


def scale_index_params(frac: int) -> tuple[int, int]:
    step = int(round(SCALE_STEP * (1 << frac)))
    base = int(round((LOG_SCALE_MIN - SCALE_STEP / 2) * (1 << frac)))
    return base, step


def scale_indexes(ls: torch.Tensor, base: int, step: int, count: int = NUM_SCALES) -> torch.Tensor:
    d = ls - base
    k = torch.div(torch.clamp(d, min=0), step, rounding_mode="floor")
    return torch.clamp(k, 0, count - 1)


@torch.no_grad()
def calibrate_hs(model: MeanScaleHyperprior, crops: torch.Tensor, ops: list[list]) -> tuple[dict, dict[str, np.ndarray]]:
    """Pick per-layer fixed-point formats from activation ranges on training crops."""
    A = model.cfg.anchors
    zs = []
    for t in np.linspace(0, A - 1, 5):
        gain, _ = model.gains(float(t))
        for i in range(0, len(crops), 8):
            y = model.analysis(crops[i:i + 8]) * gain.view(1, -1, 1, 1)
            zs.append(torch.round(model.h_a(y)))
    return calibrate_hs_from_z(model.h_s, zs, ops)


@torch.no_grad()
def calibrate_hs_from_z(h_s: torch.nn.Sequential, zs: list[torch.Tensor], ops: list[list]) -> tuple[dict, dict[str, np.ndarray]]:
    """The integer h_s's per-layer fixed-point formats and tensors, from the
    activation ranges of the float ``h_s`` on the hyper-latents ``zs``."""
    maxabs = []  # per conv layer: max |pre-activation output|
    for z in zs:
        a = z
        k = 0
        for op, layer in zip(ops, h_s):
            a = layer(a)
            if op[0] in ("conv", "deconv"):
                m = float(a.abs().max())
                if k >= len(maxabs):
                    maxabs.append(m)
                else:
                    maxabs[k] = max(maxabs[k], m)
                k += 1
    meta: dict = {}
    tensors: dict[str, np.ndarray] = {}
    fa_in = 0
    k = 0
    conv_idx = [i for i, op in enumerate(ops) if op[0] in ("conv", "deconv")]
    for j, i in enumerate(conv_idx):
        layer = h_s[i]
        last = j == len(conv_idx) - 1
        w = layer.weight.detach().double()
        headroom = 2.0
        if last:
            fa_out = HS_FRAC_OUT
        else:
            fa_out = int(math.floor(math.log2(ACT_MAX / (maxabs[j] * headroom))))
            fa_out = max(0, min(14, fa_out))
        fw = int(math.floor(math.log2(ACT_MAX / float(w.abs().max()))))
        # the final accumulator must stay well inside int32
        acc_bits = int(math.floor(math.log2(2**30 / (maxabs[j] * headroom))))
        fw = min(fw, acc_bits - fa_in)
        shift = fa_in + fw - fa_out
        if shift < 0:
            fa_out += shift
            shift = 0
        wq = torch.clamp(torch.round(w * 2.0**fw), -ACT_MAX, ACT_MAX)
        bq = torch.round(layer.bias.detach().double() * 2.0 ** (fa_in + fw))
        followed_by_relu = i + 1 < len(ops) and ops[i + 1][0] == "relu"
        tensors[f"h_s.{i}.weight"] = wq.numpy().astype(np.int16)
        tensors[f"h_s.{i}.bias"] = bq.numpy().astype(np.int32)
        meta[f"hs.shift.{i}"] = shift
        meta[f"hs.fw.{i}"] = fw
        meta[f"hs.fa_in.{i}"] = fa_in
        meta[f"hs.fa_out.{i}"] = fa_out
        meta[f"hs.lo.{i}"] = 0 if followed_by_relu else (-(2**30) if last else -ACT_MAX)
        meta[f"hs.hi.{i}"] = (2**30) if last else ACT_MAX
        fa_in = fa_out
        k += 1
    meta["hs.frac_out"] = fa_in
    return meta, tensors


def load_int_hs_as_float(model: MeanScaleHyperprior, ops: list[list], t: dict[str, np.ndarray], meta: dict) -> None:
    with torch.no_grad():
        for i, op in enumerate(ops):
            if op[0] in ("conv", "deconv"):
                fw, fa_in = int(meta[f"hs.fw.{i}"]), int(meta[f"hs.fa_in.{i}"])
                model.h_s[i].weight.copy_(torch.from_numpy(t[f"h_s.{i}.weight"].astype(np.float32) / 2.0**fw))
                model.h_s[i].bias.copy_(torch.from_numpy(t[f"h_s.{i}.bias"].astype(np.float64) / 2.0 ** (fa_in + fw)).float())
