"""Entropy models: a learned factorized prior (for the side latent z) and a
Gaussian conditional (for the main latent y, given mean and scale).

Training uses the additive-uniform-noise proxy for the rate. At export time
both models are turned into quantized CDF tables (16-bit precision) built by
the entropy coder's own function, so encoder and decoder never evaluate a
float density at run time.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LIKELIHOOD_BOUND = 1e-9

# The fixed Gaussian scale table lives with the coder's other tables (torch-free).
from .tables import (LOG_SCALE_MAX, LOG_SCALE_MIN, NUM_SCALES, SCALE_MAX, SCALE_MIN, SCALE_STEP,  # noqa: E402,F401
                     scale_table)


class _LowerBound(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return torch.clamp(x, min=bound)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (g < 0)
        return g * pass_through, None


def quantize_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class FactorizedPrior(nn.Module):
    """Univariate non-parametric density per channel (Balle et al. 2018,
    appendix 6.1), filters (3, 3, 3, 3)."""

    FILTERS = (3, 3, 3, 3)
    INIT_SCALE = 10.0
    TAIL_MASS = 1e-9

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        dims = (1,) + self.FILTERS + (1,)
        scale = self.INIT_SCALE ** (1 / (len(self.FILTERS) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.FILTERS) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(self.FILTERS):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        # Quantiles (lower tail, median, upper tail) used only to size the CDF
        # tables at export; trained by aux_loss.
        t = math.log(2 / self.TAIL_MASS - 1)
        self.quantiles = nn.Parameter(torch.tensor([-self.INIT_SCALE, 0.0, self.INIT_SCALE]).repeat(channels, 1, 1))
        self.register_buffer("_target", torch.tensor([-t, 0.0, t]))

    def logits_cumulative(self, x: torch.Tensor, stop_gradient: bool = False) -> torch.Tensor:
        """x: (C, 1, L) -> logits of the CDF, (C, 1, L)."""
        logits = x
        for i in range(len(self.FILTERS) + 1):
            m = self.matrices[i]
            b = self.biases[i]
            if stop_gradient:
                m, b = m.detach(), b.detach()
            logits = torch.matmul(F.softplus(m), logits) + b
            if i < len(self.FILTERS):
                f = self.factors[i]
                if stop_gradient:
                    f = f.detach()
                logits = logits + torch.tanh(f) * torch.tanh(logits)
        return logits

    def likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, C, H, W) already noisy or rounded -> probability mass of the unit bin."""
        B, C, H, W = z.shape
        v = z.permute(1, 0, 2, 3).reshape(C, 1, -1)
        lower = self.logits_cumulative(v - 0.5)
        upper = self.logits_cumulative(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        lik = _LowerBound.apply(lik, LIKELIHOOD_BOUND)
        return lik.reshape(C, B, H, W).permute(1, 0, 2, 3)

    def aux_loss(self) -> torch.Tensor:
        logits = self.logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self._target.view(1, 1, 3)).sum()

    @torch.no_grad()
    def tail_quantiles(self, support: int) -> torch.Tensor:
        """(C, 2): where each channel's CDF reaches TAIL_MASS/2 and 1 - TAIL_MASS/2,
        found by bisection on the learned CDF itself (it is monotone), so the
        tables do not depend on how far the aux loss has moved ``quantiles``
        in a short training run. Clamped to [-support, support]."""
        out = []
        for target in (-float(self._target[2]), float(self._target[2])):
            lo = torch.full((self.channels, 1, 1), -float(support))
            hi = torch.full((self.channels, 1, 1), float(support))
            for _ in range(48):
                mid = (lo + hi) / 2
                below = self.logits_cumulative(mid, stop_gradient=True) < target
                lo = torch.where(below, mid, lo)
                hi = torch.where(below, hi, mid)
            out.append(((lo + hi) / 2).view(-1))
        return torch.stack(out, dim=1)

    @torch.no_grad()
    def pmf_tables(self, support: int) -> tuple[np.ndarray, np.ndarray]:
        """PMF over integers [lo_c, hi_c] per channel, sized from the CDF's tails
        (``tail_quantiles``) and widened to the aux-trained ``quantiles`` where
        those reach further.

        Returns (pmfs (C, L) float64 padded with zeros, lengths (C,), offsets (C,))."""
        q = self.quantiles.detach()[:, 0, :]
        tails = self.tail_quantiles(support)
        lo = torch.clamp(torch.floor(torch.minimum(tails[:, 0], q[:, 0])), -support, 0).to(torch.int64)
        hi = torch.clamp(torch.ceil(torch.maximum(tails[:, 1], q[:, 2])), 0, support).to(torch.int64)
        lengths = (hi - lo + 1)
        L = int(lengths.max())
        pmfs = np.zeros((self.channels, L), dtype=np.float64)
        for c in range(self.channels):
            xs = torch.arange(int(lo[c]), int(hi[c]) + 1, dtype=torch.float32).view(1, 1, -1)
            m = [F.softplus(p[c:c + 1]) for p in self.matrices]
            lo_l = (xs - 0.5).double()
            hi_l = (xs + 0.5).double()
            for i in range(len(self.FILTERS) + 1):
                lo_l = torch.matmul(m[i].double(), lo_l) + self.biases[i][c:c + 1].double()
                hi_l = torch.matmul(m[i].double(), hi_l) + self.biases[i][c:c + 1].double()
                if i < len(self.FILTERS):
                    f = torch.tanh(self.factors[i][c:c + 1].double())
                    lo_l = lo_l + f * torch.tanh(lo_l)
                    hi_l = hi_l + f * torch.tanh(hi_l)
            sign = -torch.sign(lo_l + hi_l)
            p = torch.abs(torch.sigmoid(sign * hi_l) - torch.sigmoid(sign * lo_l)).flatten().numpy()
            pmfs[c, : len(p)] = p
        return pmfs, lengths.numpy(), lo.numpy()


class GaussianConditional(nn.Module):
    """Likelihood of y under N(mean, scale) convolved with a unit box."""

    @staticmethod
    def likelihood(y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        v = torch.abs(y - mean)
        s = scale
        upper = 0.5 * torch.erfc(-(0.5 - v) / (s * math.sqrt(2)))
        lower = 0.5 * torch.erfc(-(-0.5 - v) / (s * math.sqrt(2)))
        lik = upper - lower
        return _LowerBound.apply(lik, LIKELIHOOD_BOUND)

    @staticmethod
    def pmf_tables(support_sigmas: float = 8.0, max_half: int = 2047) -> tuple[list[np.ndarray], np.ndarray]:
        """One zero-centred PMF per scale in the scale table.

        Table k covers integers [-h_k, h_k] with h_k = ceil(support_sigmas*s_k).
        Returns (pmfs, offsets)."""
        pmfs = []
        offsets = []
        for s in scale_table():
            h = int(min(max_half, math.ceil(support_sigmas * s)))
            xs = np.arange(-h, h + 1, dtype=np.float64)
            up = 0.5 * np.vectorize(math.erfc)(-(xs + 0.5) / (s * math.sqrt(2)))
            lo = 0.5 * np.vectorize(math.erfc)(-(xs - 0.5) / (s * math.sqrt(2)))
            pmfs.append(up - lo)
            offsets.append(-h)
        return pmfs, np.array(offsets, dtype=np.int32)
