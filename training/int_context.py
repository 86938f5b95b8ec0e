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
from .int_hs import ACT_MAX, HS_FRAC_OUT, IntHyperSynthesis, calibrate_hs_from_z, scale_index_params, scale_indexes

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


class QConv:
    """One integer convolution: int16 weights over input parts of given
    fractions, int32 accumulation at one fraction, shift, clamp."""

    def __init__(self, conv: nn.Conv2d, parts: list[tuple[int, int]], out_frac: int, maxabs_out: float,
                 lo: int, hi: int):
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
        wq = torch.empty_like(w)
        c = 0
        for n, frac in parts:
            wq[:, c:c + n] = torch.clamp(torch.round(w[:, c:c + n] * 2.0 ** (fa_acc - frac)), -ACT_MAX, ACT_MAX)
            c += n
        self.weight = wq  # float64 holding int16 values
        self.bias = torch.round(b * 2.0**fa_acc).to(torch.int64)
        self.fa_acc = fa_acc
        self.shift = fa_acc - out_frac
        self.out_frac = out_frac
        self.lo, self.hi = lo, hi
        self.pad = conv.padding[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        acc = F.conv2d(x.double(), self.weight, None, padding=self.pad).to(torch.int64)
        acc = acc + self.bias.view(1, -1, 1, 1)
        return torch.clamp(round_shift(acc, self.shift), self.lo, self.hi)


class IntContextModel:
    """The integer decoder-side parameters of a trained context model."""

    def __init__(self, model: EntropyModel, hs_ops: list[list], calib: list[torch.Tensor]):
        """calib: gained latents yg (1, M, h, w) from training crops at several rates."""
        self.model = model
        self.bounds = model.bounds
        self.spatial = model.spec.spatial
        with torch.no_grad():
            zs = [torch.round(model.h_a(yg)) for yg in calib]
            meta, tensors = calibrate_hs_from_z(model.h_s, zs, hs_ops)
            self.h_s = IntHyperSynthesis(hs_ops, tensors, meta)
            self.idx_base, self.idx_step = scale_index_params(int(meta["hs.frac_out"]))
            ranges = self._float_ranges(calib)
        self.s_y = frac_for(ranges["yhat"])
        self.s_h = frac_for(ranges["hp"])
        self.ch, self.sp, self.fa, self.fn = [], [], [], []
        for g in range(len(self.bounds) - 1):
            c0, c1 = self.bounds[g], self.bounds[g + 1]
            C = c1 - c0
            ch, sp = model.ch_ctx[g], model.sp_ctx[g]
            qch = qsp = None
            parts_extra = []
            if isinstance(ch, nn.Conv2d):
                f = frac_for(ranges[f"ch{g}"])
                qch = QConv(ch, [(c0, self.s_y)], f, ranges[f"ch{g}"], 0, ACT_MAX)
                parts_extra.append((ch.out_channels, f))
            if isinstance(sp, nn.Conv2d):
                f = frac_for(ranges[f"sp{g}"])
                qsp = QConv(sp, [(C, self.s_y)], f, ranges[f"sp{g}"], 0, ACT_MAX)
            fa, fn = model.fuse_a[g], model.fuse_n[g]
            qfa = qfn = None
            lim = int(ACC_LIMIT)
            if isinstance(fa, nn.Conv2d):
                qfa = QConv(fa, parts_extra + [(2 * C, self.s_h)], HS_FRAC_OUT, ranges[f"fa{g}"], -lim, lim)
            if isinstance(fn, nn.Conv2d):
                sp_part = [(sp.out_channels, qsp.out_frac)] if qsp else []
                qfn = QConv(fn, parts_extra + sp_part + [(2 * C, self.s_h)], HS_FRAC_OUT, ranges[f"fn{g}"], -lim, lim)
            self.ch.append(qch)
            self.sp.append(qsp)
            self.fa.append(qfa)
            self.fn.append(qfn)

    @torch.no_grad()
    def _float_ranges(self, calib: list[torch.Tensor]) -> dict[str, float]:
        """Max |value| of every integer activation's float counterpart."""
        m = self.model
        rng: dict[str, float] = {}

        def note(key, v):
            rng[key] = max(rng.get(key, 0.0), float(v.abs().max()) if v.numel() else 0.0)

        hooks = []
        for g in range(len(self.bounds) - 1):
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

    @torch.no_grad()
    def params(self, yg: torch.Tensor, z: torch.Tensor | None = None):
        """Integer decode-order parameters for gained latents yg (1, M, h, w):
        (mu float64 = mu_q / 2^12, scale index, z). z: the hyper-latents (default:
        the encoder's round(h_a(yg)))."""
        if z is None:
            z = torch.round(self.model.h_a(yg))
        out = self.h_s(z)
        M = out.shape[1] // 2
        mean_q, ls_q = out[:, :M], out[:, M:]
        _, _, h, w = yg.shape
        mask = anchor_mask(h, w).to(torch.bool) if self.spatial else None
        ygd = yg.double()
        mus, lss, yq = [], [], []
        one = float(1 << HS_FRAC_OUT)
        for g in range(len(self.bounds) - 1):
            c0, c1 = self.bounds[g], self.bounds[g + 1]
            C = c1 - c0
            hp = torch.cat([mean_q[:, c0:c1], ls_q[:, c0:c1]], 1)
            hp16 = to_i16(hp, self.s_h)
            feats = []
            if self.ch[g] is not None:
                feats.append(self.ch[g](to_i16(torch.cat(yq, 1), self.s_y)))
            pa = hp + self.fa[g](torch.cat(feats + [hp16], 1)) if self.fa[g] is not None else hp
            if self.spatial:
                mu_a = pa[:, :C]
                r_a = torch.round(ygd[:, c0:c1] - mu_a.double() / one).to(torch.int64)
                ya = (r_a * (1 << HS_FRAC_OUT) + mu_a) * mask
                sp = self.sp[g](to_i16(ya, self.s_y))
                pn = hp + self.fn[g](torch.cat(feats + [sp, hp16], 1))
                p = torch.where(mask, pa, pn)
            else:
                p = pa
            mu_g, ls_g = p[:, :C], p[:, C:]
            r = torch.round(ygd[:, c0:c1] - mu_g.double() / one).to(torch.int64)
            yq.append(r * (1 << HS_FRAC_OUT) + mu_g)
            mus.append(mu_g)
            lss.append(ls_g)
        mu = torch.cat(mus, 1).double() / one
        idx = scale_indexes(torch.cat(lss, 1), self.idx_base, self.idx_step)
        return mu, idx, z

    @torch.no_grad()
    def bits(self, yg: torch.Tensor) -> tuple[float, float]:
        """(bits_y, bits_z) of the real hard quantisation with the integer parameters
        (Gaussian at the table scale; the float measure of train_entropy)."""
        mu, idx, z = self.params(yg)
        yhat = mu + torch.round(yg.double() - mu)
        scale = torch.exp(torch.clamp(LOG_SCALE_MIN + idx.double() * SCALE_STEP, LOG_SCALE_MIN, LOG_SCALE_MAX))
        lik = GaussianConditional.likelihood(yhat.float(), mu.float(), scale.float())
        bits_z = -torch.log2(self.model.z_prior.likelihood(z)).sum()
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
    qm = IntContextModel(model, arch(base.cfg)["h_s"], calib_latents(train, model, A, a.calib, 32))
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
                by, bz = qm.bits(y * model.gains(tt)[:, :, None, None])
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
