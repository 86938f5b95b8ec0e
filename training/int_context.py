"""Context entropy models on the integer path (issue 21, groundwork for phase 3).

The decoder of a context model must compute every mean and scale index
bit-identically on every CPU, as it does for the hyper-synthesis h_s today
(training/int_hs.py). This module defines that integer arithmetic for the
variants of training/context_models.py, calibrates it from a trained float
model, and measures what the rounding costs in code length against the float
model on held-out latents:

    python -m training.int_context --variant elic [--images 12] [--anchors 0,3,7]

Integer arithmetic (what a C++ decoder would run; docs/context_model.md, section 6):

* h_s is the integer h_s of int_hs.py, recalibrated for the variant's
  (refit) float h_s: means and scale logits in Q12 (``HS_FRAC_OUT``);
* ŷ in Q12 is exact: ŷ_q = 4096 r + μ_q. A context net reads it as int16
  at ``s_y`` fractional bits: clamp(round_shift(ŷ_q, 12 - s_y), ±32767);
  the fuses read the hyper parameters the same way at ``s_h`` bits;
* every conv: int16 weights, int32 accumulation at one fraction F for all
  of its input parts (each part's weights scaled by 2^(F - frac of the part)),
  int32 bias at F, then round_shift to the output fraction and a clamp
  (ReLU layers: [0, 32767]; the fuses: Q12, added to the hyper parameters);
* decode order and masks as in context_models.EntropyModel.params.

Products are below 2^30 and sums below 2^53, so the float64 convolutions
below are exact.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .context_models import VARIANTS, EntropyModel, anchor_mask, build_variant
from .entropy_models import LOG_SCALE_MAX, LOG_SCALE_MIN, SCALE_STEP, GaussianConditional
from .int_hs import (ACT_MAX, HS_FRAC_OUT, IntHyperSynthesis, calibrate_hs_from_z, scale_index_params, scale_indexes,
                     wrap_i32)

HEADROOM = 2.0
ACC_LIMIT = 2.0**30


def round_shift(v: torch.Tensor, s: int) -> torch.Tensor:
    """v / 2^s rounded half up (arithmetic shift), for int64 v; s < 0 multiplies."""
    if s <= 0:
        return v * (1 << -s)
    return torch.div(v + (1 << (s - 1)), 1 << s, rounding_mode="floor")


def to_i16(v_q12: torch.Tensor, frac: int) -> torch.Tensor:
    """A Q12 integer tensor as a saturated int16 activation with ``frac`` fractional bits."""
    return torch.clamp(round_shift(v_q12, HS_FRAC_OUT - frac), -ACT_MAX, ACT_MAX)


def frac_for(maxabs: float, cap: int = 14) -> int:
    """Fractional bits that keep |x| <= maxabs inside int16 with HEADROOM."""
    if maxabs <= 0:
        return cap
    return max(0, min(cap, int(math.floor(math.log2(ACT_MAX / (maxabs * HEADROOM))))))


CTX_CLAMP = 2**30  # fuse outputs and the parameters they give are clamped to +-2^30 (Q12)


def int_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, pad: int, shift: int, lo: int, hi: int) -> torch.Tensor:
    """One integer convolution exactly as the core's Conv2dI16 runs it (stride 1):
    acc = bias + sum(x * w) modulo 2^32, v = (acc + 2^(shift-1)) >> shift (the
    rounding add also modulo 2^32, arithmetic shift), clamp(v, lo, hi).
    x: int64 holding int16 values; w: float64 holding int16 values; b: int64."""
    acc = F.conv2d(x.double(), w, None, padding=pad).to(torch.int64) + b.view(1, -1, 1, 1)
    acc = wrap_i32(acc)
    if shift > 0:
        acc = wrap_i32(acc + (1 << (shift - 1)))
    v = torch.div(acc, 1 << shift, rounding_mode="floor")
    return torch.clamp(v, lo, hi)


class QConv:
    """One integer convolution: int16 weights over input parts of given
    fractions, int32 accumulation at one fraction, shift, clamp."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, shift: int, lo: int, hi: int, out_frac: int = 0):
        self.weight = weight.double()  # float64 holding int16 values, [cout][cin][k][k]
        self.bias = bias.to(torch.int64)
        self.shift, self.lo, self.hi, self.out_frac = int(shift), int(lo), int(hi), int(out_frac)
        self.pad = self.weight.shape[-1] // 2

    @classmethod
    def calibrate(cls, conv: nn.Conv2d, parts: list[tuple[int, int]], out_frac: int, maxabs_out: float,
                  lo: int, hi: int) -> "QConv":
        """From a float conv whose input is the concatenation of ``parts``
        (channels, fractional bits), with outputs up to ``maxabs_out``."""
        w = conv.weight.detach().double()
        b = conv.bias.detach().double()
        fa_acc = int(math.floor(math.log2(ACC_LIMIT / (max(maxabs_out, 1e-6) * HEADROOM))))
        c = 0
        for n, frac in parts:
            wmax = float(w[:, c:c + n].abs().max()) if n else 0.0
            if wmax > 0:
                fa_acc = min(fa_acc, frac + int(math.floor(math.log2(ACT_MAX / wmax))))
            c += n
        if c != w.shape[1]:
            raise ValueError(f"input parts {parts} do not cover {w.shape[1]} channels")
        fa_acc = max(fa_acc, out_frac)  # the core's shift is >= 0
        wq = torch.empty_like(w)
        c = 0
        for n, frac in parts:
            wq[:, c:c + n] = torch.clamp(torch.round(w[:, c:c + n] * 2.0 ** (fa_acc - frac)), -ACT_MAX, ACT_MAX)
            c += n
        bias = torch.clamp(torch.round(b * 2.0**fa_acc), -(2**31), 2**31 - 1).to(torch.int64)
        return cls(wq, bias, fa_acc - out_frac, lo, hi, out_frac)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return int_conv(x, self.weight, self.bias, self.pad, self.shift, self.lo, self.hi)


def _reorder_fuse_n(fn: nn.Conv2d, hc: int, hs: int, C: int) -> nn.Conv2d:
    """fuse_n with its input columns in the core's order [ch, hyper, sp]
    (training order: [ch, sp, hyper]), so that fuse_a's input is a prefix."""
    out = nn.Conv2d(hc + 2 * C + hs, fn.out_channels, 1)
    with torch.no_grad():
        w = fn.weight
        out.weight.copy_(torch.cat([w[:, :hc], w[:, hc + hs:], w[:, hc:hc + hs]], 1))
        out.bias.copy_(fn.bias)
    return out


class IntContextModel:
    """The integer decoder-side parameters of a context model: what the
    core's context model (src/cpp/core/context_model.cc) computes, bit for
    bit (docs/format.md, "LATC"; docs/weights.md, "ctx.*").

    Per group g (channels [c0, c0 + C)), with hp = the integer h_s's (mean,
    log-scale) of the group in Q12 and hp16 = to_i16(hp, s_h):
      ch  = conv3x3(to_i16(y_hat[:, :c0], s_y))           (g > 0; relu clamp)
      pa  = clamp(hp + fa(cat(ch, hp16)), +-2^30)          (pa = hp without ch)
      anchors ((i + j) even) take (mu, scale index) from pa and are coded;
      sp  = conv3x3(to_i16(y_hat_anchors, s_y), 0 at non-anchors)
      pn  = clamp(hp + fn(cat(ch, hp16, sp)), +-2^30)
      non-anchors take them from pn and are coded;
    y_hat = r * 2^12 + mu (Q12, exact). Without spatial context every
    position takes pa in one pass.
    """

    def __init__(self, groups: list[dict], s_y: int, s_h: int, h_s: IntHyperSynthesis):
        self.groups = groups  # per group: c0, C, hc, hs, ch, sp, fa, fn (QConv or None)
        self.s_y, self.s_h = int(s_y), int(s_h)
        self.h_s = h_s
        self.idx_base, self.idx_step = scale_index_params(h_s.frac_out)
        self.bounds = [g["c0"] for g in groups] + [groups[-1]["c0"] + groups[-1]["C"]]
        self.spatial = any(g["hs"] > 0 for g in groups)

    # ------------------------------------------------------------ building --
    @classmethod
    def calibrate(cls, model: EntropyModel, hs_ops: list[list], calib: list[torch.Tensor]) -> "IntContextModel":
        """From a trained float model; calib: gained latents yg (1, M, h, w)
        from training crops at several rates."""
        with torch.no_grad():
            zs = [torch.round(model.h_a(yg)) for yg in calib]
            meta, tensors = calibrate_hs_from_z(model.h_s, zs, hs_ops)
            h_s = IntHyperSynthesis(hs_ops, tensors, meta)
            ranges = _float_ranges(model, calib)
        s_y = frac_for(ranges["yhat"])
        s_h = frac_for(ranges["hp"])
        lim = CTX_CLAMP
        groups = []
        for g in range(len(model.bounds) - 1):
            c0, c1 = model.bounds[g], model.bounds[g + 1]
            C = c1 - c0
            ch, sp = model.ch_ctx[g], model.sp_ctx[g]
            hc = ch.out_channels if isinstance(ch, nn.Conv2d) else 0
            hs = sp.out_channels if isinstance(sp, nn.Conv2d) else 0
            qch = qsp = qfa = qfn = None
            f_ch = f_sp = 0
            if hc:
                f_ch = frac_for(ranges[f"ch{g}"])
                qch = QConv.calibrate(ch, [(c0, s_y)], f_ch, ranges[f"ch{g}"], 0, ACT_MAX)
            if hs:
                f_sp = frac_for(ranges[f"sp{g}"])
                qsp = QConv.calibrate(sp, [(C, s_y)], f_sp, ranges[f"sp{g}"], 0, ACT_MAX)
            ch_part = [(hc, f_ch)] if hc else []
            if isinstance(model.fuse_a[g], nn.Conv2d):
                qfa = QConv.calibrate(model.fuse_a[g], ch_part + [(2 * C, s_h)], HS_FRAC_OUT, ranges[f"fa{g}"], -lim, lim)
            if isinstance(model.fuse_n[g], nn.Conv2d):
                fn = _reorder_fuse_n(model.fuse_n[g], hc, hs, C)
                qfn = QConv.calibrate(fn, ch_part + [(2 * C, s_h), (hs, f_sp)], HS_FRAC_OUT, ranges[f"fn{g}"], -lim, lim)
            groups.append(dict(c0=c0, C=C, hc=hc, hs=hs, ch=qch, sp=qsp, fa=qfa, fn=qfn))
        qm = cls(groups, s_y, s_h, h_s)
        qm.hs_meta, qm.hs_tensors = meta, tensors
        return qm

    def to_weights(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The weights-file entries of the context part (docs/weights.md):
        arch.ctx = [C, hc, hs] per group; ctx.s_y, ctx.s_h; per net
        ctx.<net>.<g>.weight (int16 [cout][cin][k][k]) / .bias (int32) and
        ctx.<net>.<g>.shift / .lo / .hi. Nets present: ch and fa iff hc > 0,
        sp and fn iff hs > 0."""
        meta: dict = {"arch.ctx": [v for g in self.groups for v in (g["C"], g["hc"], g["hs"])],
                      "ctx.s_y": self.s_y, "ctx.s_h": self.s_h}
        tensors: dict[str, np.ndarray] = {}
        for gi, g in enumerate(self.groups):
            for net in ("ch", "sp", "fa", "fn"):
                q = g[net]
                if q is None:
                    continue
                tensors[f"ctx.{net}.{gi}.weight"] = q.weight.numpy().astype(np.int16)
                tensors[f"ctx.{net}.{gi}.bias"] = q.bias.numpy().astype(np.int32)
                meta[f"ctx.{net}.{gi}.shift"] = q.shift
                meta[f"ctx.{net}.{gi}.lo"] = q.lo
                meta[f"ctx.{net}.{gi}.hi"] = q.hi
        return meta, tensors

    @classmethod
    def from_weights(cls, meta: dict, tensors: dict, h_s: IntHyperSynthesis) -> "IntContextModel":
        a = [int(v) for v in meta["arch.ctx"]]
        groups, c0 = [], 0
        for gi in range(len(a) // 3):
            C, hc, hs = a[3 * gi:3 * gi + 3]
            g = dict(c0=c0, C=C, hc=hc, hs=hs)
            present = {"ch": hc > 0, "sp": hs > 0, "fa": hc > 0, "fn": hs > 0}
            for net, has in present.items():
                g[net] = None
                if has:
                    p = f"ctx.{net}.{gi}"
                    g[net] = QConv(torch.from_numpy(np.asarray(tensors[p + ".weight"], dtype=np.float64)),
                                   torch.from_numpy(np.asarray(tensors[p + ".bias"], dtype=np.int64)),
                                   int(meta[p + ".shift"]), int(meta[p + ".lo"]), int(meta[p + ".hi"]))
            groups.append(g)
            c0 += C
        return cls(groups, int(meta["ctx.s_y"]), int(meta["ctx.s_h"]), h_s)

    # ------------------------------------------------------------ running --
    @torch.no_grad()
    def run(self, hs_out: torch.Tensor, code) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The decode-order loop. hs_out: the integer h_s output (1, 2M, h, w),
        int64 (Q12 means, then log-scales). code(g, phase, mu_q, idx, mask) ->
        r (int64, the group's shape): the integers coded at the positions of
        ``mask`` (phase 0: anchors, 1: non-anchors, -1: all), given their Q12
        means and scale indexes (the encoder quantises, a decoder reads them).
        Returns (mu_q, idx, r) for all channels."""
        M = hs_out.shape[1] // 2
        mean_q, ls_q = hs_out[:, :M], hs_out[:, M:]
        _, _, h, w = hs_out.shape
        anchors = anchor_mask(h, w).to(torch.bool)
        one = 1 << HS_FRAC_OUT
        mus, idxs, rs, yq = [], [], [], []
        for gi, g in enumerate(self.groups):
            c0, C = g["c0"], g["C"]
            hp = torch.cat([mean_q[:, c0:c0 + C], ls_q[:, c0:c0 + C]], 1)
            hp16 = to_i16(hp, self.s_h)
            feats = [g["ch"](to_i16(torch.cat(yq, 1), self.s_y))] if g["ch"] is not None else []
            pa = torch.clamp(hp + g["fa"](torch.cat(feats + [hp16], 1)), -CTX_CLAMP, CTX_CLAMP) if g["fa"] is not None else hp
            if g["sp"] is not None:
                ia = scale_indexes(pa[:, C:], self.idx_base, self.idx_step)
                m = anchors.expand(1, C, h, w)
                r_a = code(gi, 0, pa[:, :C], ia, m)
                ya = torch.where(m, r_a * one + pa[:, :C], torch.zeros_like(r_a))
                sp = g["sp"](to_i16(ya, self.s_y))
                pn = torch.clamp(hp + g["fn"](torch.cat(feats + [hp16, sp], 1)), -CTX_CLAMP, CTX_CLAMP)
                inn = scale_indexes(pn[:, C:], self.idx_base, self.idx_step)
                r_n = code(gi, 1, pn[:, :C], inn, ~m)
                p = torch.where(m.repeat(1, 2, 1, 1), pa, pn)
                r = torch.where(m, r_a, r_n)
            else:
                ia = scale_indexes(pa[:, C:], self.idx_base, self.idx_step)
                r = code(gi, -1, pa[:, :C], ia, torch.ones(1, C, h, w, dtype=torch.bool))
                p = pa
            mu_g = p[:, :C]
            yq.append(r * one + mu_g)
            mus.append(mu_g)
            idxs.append(scale_indexes(p[:, C:], self.idx_base, self.idx_step))
            rs.append(r)
        return torch.cat(mus, 1), torch.cat(idxs, 1), torch.cat(rs, 1)

    @torch.no_grad()
    def params(self, yg: torch.Tensor, z: torch.Tensor):
        """Decode-order parameters for gained latents yg (1, M, h, w) with plain
        rounding r = round(yg - mu): (mu float64 = mu_q / 2^12, scale index)."""
        ygd = yg.double()
        one = float(1 << HS_FRAC_OUT)

        def code(gi, phase, mu_q, idx, mask):
            c0, C = self.groups[gi]["c0"], self.groups[gi]["C"]
            return torch.round(ygd[:, c0:c0 + C] - mu_q.double() / one).to(torch.int64)

        mu_q, idx, _ = self.run(self.h_s(z), code)
        return mu_q.double() / one, idx


def _float_ranges(model: EntropyModel, calib: list[torch.Tensor]) -> dict[str, float]:
    """Max |value| of every integer activation's float counterpart."""
    m = model
    rng: dict[str, float] = {}

    def note(key, v):
        rng[key] = max(rng.get(key, 0.0), float(v.abs().max()) if v.numel() else 0.0)

    hooks = []
    for g in range(len(m.bounds) - 1):
        for key, mod in ((f"ch{g}", m.ch_ctx[g]), (f"sp{g}", m.sp_ctx[g]), (f"fa{g}", m.fuse_a[g]),
                         (f"fn{g}", m.fuse_n[g])):
            if isinstance(mod, nn.Conv2d):
                hooks.append(mod.register_forward_hook(lambda mod, i, o, key=key: note(key, o)))
    try:
        for yg in calib:
            _, mean_h, ls_h = m.hyper(yg, noise=False)
            note("hp", torch.cat([mean_h, ls_h], 1))
            _, _, yhat = m.params(yg, mean_h, ls_h)
            note("yhat", yhat)
    finally:
        for h in hooks:
            h.remove()
    return rng


def int_bits(qm: IntContextModel, model: EntropyModel, yg: torch.Tensor) -> tuple[float, float]:
    """(bits_y, bits_z) of the real hard quantisation with the integer parameters
    (Gaussian at the table scale; the float measure of train_entropy)."""
    z = torch.round(model.h_a(yg))
    mu, idx = qm.params(yg, z)
    yhat = mu + torch.round(yg.double() - mu)
    scale = torch.exp(torch.clamp(LOG_SCALE_MIN + idx.double() * SCALE_STEP, LOG_SCALE_MIN, LOG_SCALE_MAX))
    lik = GaussianConditional.likelihood(yhat.float(), mu.float(), scale.float())
    bits_z = -torch.log2(model.z_prior.likelihood(z)).sum()
    return float(-torch.log2(lik).sum()), float(bits_z)


def calib_latents(bank, model: EntropyModel, anchors: int, n: int, size: int, seed: int = 0) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    y, _ = bank.sample(n, size, rng, anchors)
    out = []
    for i in range(n):
        t = torch.tensor([float(i % anchors)])
        out.append(y[i:i + 1] * model.gains(t)[:, :, None, None])
    return out


def main(argv=None) -> int:
    from .cache_latents import DEFAULT_CACHE, DEFAULT_WEIGHTS, LatentBank, cache_path
    from .models import arch
    from .train_entropy import DEFAULT_OUT
    from .weights_io import load_hyperprior_weights

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="elic", choices=sorted(VARIANTS))
    ap.add_argument("--state", help="trained state (default ~/.cache/lmcodec/entropy/<variant>/state.pt)")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--images", type=int, default=12, help="held-out images (val/orig), 0 = all")
    ap.add_argument("--anchors", default="0,3,7")
    ap.add_argument("--calib", type=int, default=48, help="training crops for the calibration")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    base = load_hyperprior_weights(None, a.weights).eval()
    A = base.cfg.anchors
    model = build_variant(base, a.variant)
    state = Path(a.state) if a.state else DEFAULT_OUT / a.variant / "state.pt"
    if VARIANTS[a.variant].trainable:
        st = torch.load(state, map_location="cpu", weights_only=False)
        model.load_state_dict(st["model"])
        print(f"{a.variant}: {state}, step {st['step']}")
    model.eval()
    ref = build_variant(base, "shipped").eval()
    lat = cache_path(a.weights, DEFAULT_CACHE)
    train = LatentBank(lat, "train", ["orig"])
    val = LatentBank(lat, "val", ["orig"])
    imgs = val.images if a.images <= 0 else val.images[:a.images]
    px = sum(h * w for h, w in val.pixels[:len(imgs)])
    qm = IntContextModel.calibrate(model, arch(base.cfg)["h_s"], calib_latents(train, model, A, a.calib, 32))
    print(f"s_y {qm.s_y}, s_h {qm.s_h}; calibrated on {a.calib} training crops")
    print(f"{len(imgs)} held-out images, {px / 1e6:.2f} MP")
    print(" t   shipped bpp   float bpp (vs shipped)   integer bpp (vs shipped)   integer vs float")
    rows = []
    for t in [int(v) for v in a.anchors.split(",")]:
        tt = torch.tensor([float(t)])
        b_ref = b_flt = b_int = 0.0
        with torch.no_grad():
            for y in imgs:
                y = y.float().unsqueeze(0)
                o = ref(y, tt, None, train=False)
                b_ref += float(o["bits_y"] + o["bits_z"])
                o = model(y, tt, None, train=False)
                b_flt += float(o["bits_y"] + o["bits_z"])
                by, bz = int_bits(qm, model, y * model.gains(tt)[:, :, None, None])
                b_int += by + bz
        rows.append((b_ref, b_flt, b_int))
        print(f"{t:2d}   {b_ref / px:10.4f}   {b_flt / px:8.4f} ({100 * (b_flt / b_ref - 1):+6.2f} %)      "
              f"{b_int / px:8.4f} ({100 * (b_int / b_ref - 1):+6.2f} %)        {100 * (b_int / b_flt - 1):+6.3f} %")
    fl = np.mean([100 * (f / r - 1) for r, f, _ in rows])
    it = np.mean([100 * (i / r - 1) for r, _, i in rows])
    print(f"mean over anchors: float {fl:+.2f} %, integer {it:+.2f} % vs shipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
