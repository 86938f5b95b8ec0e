"""Entropy models over frozen latents: the hyperprior refit and slim context models.

All variants share the hyperprior part (h_a, h_s, the factorized z prior),
initialised from the shipped weights; the gains are frozen (they belong to
the transforms). The context variants add, per channel group g (channels
[c0, c1), C = c1 - c0):

* channel context (group g > 0): ``ch_g = relu(conv3x3(y_hat[:, :c0]))``, all
  positions (the earlier groups are fully decoded);
* spatial context (checkerboard, two passes): anchors are the positions with
  (i + j) even; ``sp_g = relu(conv3x3(y_hat_g * anchor_mask))`` evaluated at
  the non-anchors only, where only the 4 cross taps see a non-zero input;
* parameters ``(mu, log s) = hyper_g + fuse(cat(ch_g, sp_g, hyper_g))``, with
  the 1x1 ``fuse`` zero-initialised, so every variant starts exactly at the
  hyperprior. Anchors and non-anchors have separate fuses.

Variants (``VARIANTS``): ``hyper`` (refit), ``hyper_hs192`` (h_s hidden 192,
function-preserving widening of the shipped h_s), ``cb`` (checkerboard, one
group), ``groups`` (uneven channel groups 16/16/32/64/64 of the
energy-ordered KLT channels, no spatial context), ``elic`` (both),
``elic_wide`` (both, context features 128 instead of 64 where 2C allows).

Decode order (what a decoder does): for g = 0..G-1: anchors of group g
(parameters from hyper + channel context), then non-anchors (+ spatial
context of the group's anchors). ``EntropyModel.params`` follows that order,
so a parameter never depends on a value decoded after it; the tests check it.

Quantisation is the codec's: y_hat = mu + round(y * gain - mu).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .entropy_models import LOG_SCALE_MAX, LOG_SCALE_MIN, NUM_SCALES, SCALE_STEP, GaussianConditional

ELIC_GROUPS_192 = [16, 16, 32, 64, 64]


@dataclass
class VariantSpec:
    name: str
    groups: list[int] | None = None  # None: one group of M channels
    spatial: bool = False
    hs_hidden: int | None = None  # widen h_s's hidden layers
    ch_hidden: int = 64  # channel-context features (capped at 2C)
    sp_hidden: int = 64  # spatial-context features (capped at 2C, except with one group)
    trainable: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


VARIANTS: dict[str, VariantSpec] = {
    "shipped": VariantSpec("shipped", trainable=False),
    "hyper": VariantSpec("hyper"),
    "hyper_hs192": VariantSpec("hyper_hs192", hs_hidden=192),
    "cb": VariantSpec("cb", spatial=True, sp_hidden=128),
    "groups": VariantSpec("groups", groups=ELIC_GROUPS_192),
    "elic": VariantSpec("elic", groups=ELIC_GROUPS_192, spatial=True),
    "elic_wide": VariantSpec("elic_wide", groups=ELIC_GROUPS_192, spatial=True, ch_hidden=128, sp_hidden=128),
}


def anchor_mask(h: int, w: int, device=None) -> torch.Tensor:
    """(1, 1, h, w) float: 1 at the first-pass positions ((i + j) even)."""
    i = torch.arange(h, device=device).view(-1, 1)
    j = torch.arange(w, device=device).view(1, -1)
    return ((i + j) % 2 == 0).float().view(1, 1, h, w)


def interp_rows(table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """table (A, M), t (B,) in [0, A-1] -> (B, M) linear interpolation between rows."""
    A = table.shape[0]
    if A == 1:
        return table[0].expand(t.shape[0], -1)
    t = t.clamp(0, A - 1)
    i = torch.clamp(torch.floor(t).long(), max=A - 2)
    f = (t - i.float()).view(-1, 1)
    return table[i] * (1 - f) + table[i + 1] * f


def snap_log_scale(ls: torch.Tensor) -> torch.Tensor:
    """log-scale -> the log of the nearest of the codec's 64 table scales."""
    idx = torch.clamp(torch.round((ls - LOG_SCALE_MIN) / SCALE_STEP), 0, NUM_SCALES - 1)
    return LOG_SCALE_MIN + idx * SCALE_STEP


def quant(yg: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """The codec's y_hat = mu + round(yg - mu); the rounding is held constant for the gradient."""
    return mu + torch.round(yg - mu).detach()


def widen_hs(h_s: nn.Sequential, hidden: int) -> nn.Sequential:
    """h_s with hidden width ``hidden`` that computes exactly what ``h_s`` does:
    the old units keep their weights, the new ones start with small random
    inputs and zero outputs (so they get gradients but change nothing yet)."""
    new = copy.deepcopy(h_s)
    convs = [i for i, m in enumerate(h_s) if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        for k, i in enumerate(convs):
            old = h_s[i]
            tr = isinstance(old, nn.ConvTranspose2d)
            cin = old.in_channels if k == 0 else hidden
            cout = old.out_channels if k == len(convs) - 1 else hidden
            kw = dict(stride=old.stride, padding=old.padding)
            if tr:
                m = nn.ConvTranspose2d(cin, cout, old.kernel_size, output_padding=old.output_padding, **kw)
                w = torch.zeros_like(m.weight)  # (cin, cout, k, k)
                ow = old.weight
                w[:ow.shape[0], :ow.shape[1]] = ow
                if k > 0:
                    w[:ow.shape[0], ow.shape[1]:] = torch.randn_like(w[:ow.shape[0], ow.shape[1]:]) * 0.01
            else:
                m = nn.Conv2d(cin, cout, old.kernel_size, **kw)
                w = torch.zeros_like(m.weight)  # (cout, cin, k, k)
                ow = old.weight
                w[:ow.shape[0], :ow.shape[1]] = ow
            if tr and k == 0:  # first layer: the new output units read z
                w[:, ow.shape[1]:] = torch.randn_like(w[:, ow.shape[1]:]) * 0.01
            m.weight.copy_(w)
            b = torch.zeros_like(m.bias)
            b[:old.bias.shape[0]] = old.bias
            m.bias.copy_(b)
            new[i] = m
    return new


class EntropyModel(nn.Module):
    def __init__(self, base, spec: VariantSpec):
        """base: a MeanScaleHyperprior (the shipped weights, dequantized)."""
        super().__init__()
        self.spec = spec
        M = base.cfg.M
        self.M = M
        self.h_a = copy.deepcopy(base.h_a)
        self.h_s = widen_hs(base.h_s, spec.hs_hidden) if spec.hs_hidden else copy.deepcopy(base.h_s)
        self.z_prior = copy.deepcopy(base.z_prior)
        self.register_buffer("log_gain", base.log_gain.detach().clone())
        groups = list(spec.groups) if spec.groups else [M]
        if sum(groups) != M:
            raise ValueError(f"groups {groups} do not sum to M={M}")
        self.groups = groups
        self.bounds = np.concatenate([[0], np.cumsum(groups)]).astype(int).tolist()
        G = len(groups)
        self.ch_ctx = nn.ModuleList()
        self.sp_ctx = nn.ModuleList()
        self.fuse_a = nn.ModuleList()
        self.fuse_n = nn.ModuleList()
        for g, C in enumerate(groups):
            c0 = self.bounds[g]
            hc = min(spec.ch_hidden, 2 * C) if (g > 0 and spec.groups) else 0
            hs = (spec.sp_hidden if G == 1 else min(spec.sp_hidden, 2 * C)) if spec.spatial else 0
            self.ch_ctx.append(nn.Conv2d(c0, hc, 3, padding=1) if hc else nn.Identity())
            self.sp_ctx.append(nn.Conv2d(C, hs, 3, padding=1) if hs else nn.Identity())
            if hs:
                self.sp_ctx[-1]._tap_frac = 4 / 9  # only the cross taps see anchors
                self.sp_ctx[-1]._pos_frac = 0.5  # evaluated at the non-anchors
            fa = nn.Conv2d(hc + 2 * C, 2 * C, 1) if hc else nn.Identity()
            fn = nn.Conv2d(hc + hs + 2 * C, 2 * C, 1) if hs else nn.Identity()
            for f in (fa, fn):
                if isinstance(f, nn.Conv2d):
                    nn.init.zeros_(f.weight)
                    nn.init.zeros_(f.bias)
            if hs and isinstance(fa, nn.Conv2d):
                fa._pos_frac = 0.5
            if hs:
                fn._pos_frac = 0.5
            self.fuse_a.append(fa)
            self.fuse_n.append(fn)
        for p in self.parameters():  # the base model may be frozen
            p.requires_grad_(True)

    # ------------------------------------------------------------------
    def gains(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(interp_rows(self.log_gain, t))

    def hyper(self, yg: torch.Tensor, noise: bool):
        z = self.h_a(yg)
        z_hat = z + (torch.round(z) - z).detach()
        z_rate = z + torch.empty_like(z).uniform_(-0.5, 0.5) if noise else z_hat
        z_lik = self.z_prior.likelihood(z_rate)
        p = self.h_s(z_hat)
        mean, ls = p.chunk(2, dim=1)
        return z_lik, mean, ls

    def params(self, yg: torch.Tensor, mean_h: torch.Tensor, ls_h: torch.Tensor):
        """Final (mu, log_scale) and y_hat, in decode order (group by group,
        anchors before non-anchors)."""
        spec = self.spec
        B, M, h, w = yg.shape
        mask = anchor_mask(h, w, yg.device) if spec.spatial else None
        mus, lss, yhats = [], [], []
        for g in range(len(self.groups)):
            c0, c1 = self.bounds[g], self.bounds[g + 1]
            C = c1 - c0
            hp = torch.cat([mean_h[:, c0:c1], ls_h[:, c0:c1]], 1)
            feats = []
            if isinstance(self.ch_ctx[g], nn.Conv2d):
                prev = torch.cat(yhats, 1)
                feats.append(F.relu(self.ch_ctx[g](prev)))
            if isinstance(self.fuse_a[g], nn.Conv2d):
                pa = hp + self.fuse_a[g](torch.cat(feats + [hp], 1))
            else:
                pa = hp
            if spec.spatial:
                mu_a = pa[:, :C]
                yhat_a = quant(yg[:, c0:c1], mu_a) * mask
                sp = F.relu(self.sp_ctx[g](yhat_a))
                pn = hp + self.fuse_n[g](torch.cat(feats + [sp, hp], 1))
                p = pa * mask + pn * (1 - mask)
            else:
                p = pa
            mu, ls = p[:, :C], p[:, C:]
            mus.append(mu)
            lss.append(ls)
            yhats.append(quant(yg[:, c0:c1], mu))
        return torch.cat(mus, 1), torch.cat(lss, 1), torch.cat(yhats, 1)

    def forward(self, y: torch.Tensor, t: torch.Tensor, K: torch.Tensor | None = None, train: bool = True,
                snap: bool = True) -> dict[str, torch.Tensor]:
        """y: pre-gain latents (B, M, h, w); t: (B,) rate positions; K: (B, M)
        distortion cost of a unit squared latent error in bits (rdo.cost / alpha).
        Returns per-sample bits_y, bits_z and dist (bits-equivalent), (B,).
        train: uniform-noise rate proxy; else the real hard quantisation, with
        the scale snapped to the codec's table (``snap``)."""
        yg = y * self.gains(t)[:, :, None, None]
        z_lik, mean_h, ls_h = self.hyper(yg, noise=train)
        mu, ls, yhat = self.params(yg, mean_h, ls_h)
        ls = torch.clamp(ls, LOG_SCALE_MIN, LOG_SCALE_MAX)
        if train:
            y_rate = yg + torch.empty_like(yg).uniform_(-0.5, 0.5)
        else:
            y_rate = yhat
            if snap:
                ls = snap_log_scale(ls)
        y_lik = GaussianConditional.likelihood(y_rate, mu, torch.exp(ls))
        out = {"bits_y": -torch.log2(y_lik).sum((1, 2, 3)), "bits_z": -torch.log2(z_lik).sum((1, 2, 3))}
        if K is not None:
            out["dist"] = (K[:, :, None, None] * (yg - yhat) ** 2).sum((1, 2, 3))
        return out

    # ------------------------------------------------------------------
    def context_parameters(self):
        for mod in (self.ch_ctx, self.sp_ctx, self.fuse_a, self.fuse_n):
            yield from mod.parameters()

    @torch.no_grad()
    def decode_macs_per_pixel(self, h: int = 32, w: int = 48) -> dict[str, float]:
        """Multiply-accumulates per image pixel of what a decoder runs: h_s and
        the context nets (masked convs counted at their live taps and positions)."""
        counts = {"h_s": 0.0, "ctx": 0.0}

        def hook(part):
            def f(mod, inp, out):
                k = mod.kernel_size[0] * mod.kernel_size[1]
                if isinstance(mod, nn.ConvTranspose2d):
                    macs = inp[0].numel() * mod.out_channels * k
                else:
                    macs = out.numel() * mod.in_channels * k
                counts[part] += macs * getattr(mod, "_tap_frac", 1.0) * getattr(mod, "_pos_frac", 1.0)
            return f

        handles = []
        for m in self.h_s.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                handles.append(m.register_forward_hook(hook("h_s")))
        for mod in (self.ch_ctx, self.sp_ctx, self.fuse_a, self.fuse_n):
            for m in mod.modules():
                if isinstance(m, nn.Conv2d):
                    handles.append(m.register_forward_hook(hook("ctx")))
        was = self.training
        self.eval()
        y = torch.randn(1, self.M, h, w)
        self.forward(y, torch.zeros(1), train=False)
        self.train(was)
        for hd in handles:
            hd.remove()
        px = h * w * 256
        return {k: v / px for k, v in counts.items()}


def build_variant(base, name: str) -> EntropyModel:
    spec = copy.deepcopy(VARIANTS[name])
    if spec.groups and sum(spec.groups) != base.cfg.M:  # tiny configs: scale the ELIC split
        M = base.cfg.M
        spec.groups = split_groups(M, len(spec.groups))
    return EntropyModel(base, spec)


def split_groups(M: int, G: int) -> list[int]:
    """ELIC-like uneven split of M channels into G groups (small first)."""
    w = [1, 1, 2, 4, 4][:G] if G <= 5 else [1] * G
    s = sum(w)
    g = [max(1, M * x // s) for x in w]
    g[-1] += M - sum(g)
    return g
