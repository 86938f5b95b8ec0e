"""The lmcodec models.

``MeanScaleHyperprior`` -- the declared architecture of the nonlinear codec
(Minnen et al. 2018 without the autoregressive context), with gain units for
continuous rate control (Cui et al. 2021). ``ARCH`` below is the single source
of truth for its layer sequence: the export writes it into the weights file
and the C++ core builds its network from what the file declares.

Rate control: A anchors with log-spaced lambdas; each anchor a owns a gain
vector g_a and an inverse-gain vector ig_a (length M). A continuous position
t in [0, A-1] interpolates both exponentially between neighbouring anchors:
g(t) = g_i^(1-f) * g_(i+1)^f, i = floor(t), f = t - i. Quality 1..100 maps
linearly onto t.

Shapes: x (B,3,H,W) in [0,1], H and W multiples of 64.
  y = (g_a(x) + g_a_lin(x)) * g(t)      (B,M,H/16,W/16)
  z = h_a(y)                  (B,N,H/64,W/64)
  z_hat = round(z)            coded with the factorized prior
  mean, log_scale = split(h_s(z_hat))   (the integer path at inference)
  r = round(y - mean)         coded with the Gaussian conditional
  x_hat = g_s(y') + g_s_lin(y'),  y' = (r + mean) * ig(t)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

from .entropy_models import (
    LOG_SCALE_MAX,
    LOG_SCALE_MIN,
    FactorizedPrior,
    GaussianConditional,
    quantize_ste,
)
from .layers import GDN, conv, deconv


@dataclass
class HyperpriorConfig:
    N: int = 128
    M: int = 192
    N1: int = 64  # width at half resolution (first/last transform stage): the costliest layers
    lambdas: list[float] = field(default_factory=lambda: [0.0016, 0.0032, 0.0064, 0.0128, 0.025, 0.05, 0.1, 0.2])
    # Linear shortcut: a 16x16 block transform (3*256 -> M) added to g_a's
    # output and its transpose (M -> 3*256) added to g_s's output. It is
    # initialised as a scaled KLT of training blocks, so training starts from
    # a working transform codec and the nonlinear paths learn the residual.
    shortcut: bool = True

    @property
    def anchors(self) -> int:
        return len(self.lambdas)

    def to_dict(self) -> dict:
        return asdict(self)


TINY_CONFIG = HyperpriorConfig(N=8, M=12, N1=6, lambdas=[0.005, 0.05])
BLOCK = 16  # the shortcut's block size = the latent's downsampling factor


def arch(cfg: HyperpriorConfig) -> dict[str, list[list]]:
    """The declared layer sequence of each sub-network.

    Each op: ["conv", c_in, c_out, k, stride] | ["deconv", c_in, c_out, k, stride]
    | ["gdn", c] | ["igdn", c] | ["relu"] | ["block", c_in, c_out, b]
    (non-overlapping b x b patches -> c_out, i.e. a conv with kernel = stride
    = b and no padding) | ["unblock", c_in, c_out, b] (its transpose: each
    input position -> a b x b patch). Parameter tensors are named
    f"{net}.{index}.weight" / ".bias" / ".beta" / ".gamma" in op order.
    With ``cfg.shortcut``, "g_a_lin" is added to g_a's output and "g_s_lin"
    to g_s's output.
    """
    N, M, N1 = cfg.N, cfg.M, cfg.N1
    lin = {"g_a_lin": [["block", 3, M, BLOCK]], "g_s_lin": [["unblock", M, 3, BLOCK]]} if cfg.shortcut else {}
    return lin | {
        "g_a": [["conv", 3, N1, 5, 2], ["gdn", N1], ["conv", N1, N, 5, 2], ["gdn", N],
                ["conv", N, N, 5, 2], ["gdn", N], ["conv", N, M, 5, 2]],
        "g_s": [["deconv", M, N, 5, 2], ["igdn", N], ["deconv", N, N, 5, 2], ["igdn", N],
                ["deconv", N, N1, 5, 2], ["igdn", N1], ["deconv", N1, 3, 5, 2]],
        "h_a": [["conv", M, N, 3, 1], ["relu"], ["conv", N, N, 5, 2], ["relu"], ["conv", N, N, 5, 2]],
        "h_s": [["deconv", N, N, 5, 2], ["relu"], ["deconv", N, N, 5, 2], ["relu"], ["conv", N, 2 * M, 3, 1]],
    }


def build(ops: list[list]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for op in ops:
        kind = op[0]
        if kind == "conv":
            layers.append(conv(op[1], op[2], op[3], op[4]))
        elif kind == "deconv":
            layers.append(deconv(op[1], op[2], op[3], op[4]))
        elif kind == "gdn":
            layers.append(GDN(op[1]))
        elif kind == "igdn":
            layers.append(GDN(op[1], inverse=True))
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "block":
            layers.append(nn.Conv2d(op[1], op[2], op[3], stride=op[3]))
        elif kind == "unblock":
            layers.append(nn.ConvTranspose2d(op[1], op[2], op[3], stride=op[3]))
        else:  # pragma: no cover - arch() is fixed
            raise ValueError(kind)
    return nn.Sequential(*layers)


def quality_to_position(quality: float, anchors: int) -> float:
    """Quality 1..100 -> continuous anchor position t in [0, anchors-1]."""
    q = min(100.0, max(1.0, float(quality)))
    return (q - 1.0) / 99.0 * (anchors - 1)


class MeanScaleHyperprior(nn.Module):
    def __init__(self, cfg: HyperpriorConfig | None = None):
        super().__init__()
        self.cfg = cfg or HyperpriorConfig()
        a = arch(self.cfg)
        self.g_a = build(a["g_a"])
        self.g_s = build(a["g_s"])
        self.h_a = build(a["h_a"])
        self.h_s = build(a["h_s"])
        if self.cfg.shortcut:
            self.g_a_lin = build(a["g_a_lin"])
            self.g_s_lin = build(a["g_s_lin"])
        A, M = self.cfg.anchors, self.cfg.M
        # log-gains; initialised so that higher anchors quantize more finely
        init = torch.linspace(-1.0, 1.0, A).view(A, 1).repeat(1, M) * 0.5 * math.log(A)
        self.log_gain = nn.Parameter(init.clone())
        self.log_inv_gain = nn.Parameter(-init.clone())
        self.z_prior = FactorizedPrior(self.cfg.N)
        self.gauss = GaussianConditional()
        self.register_buffer("log_lambdas", torch.tensor([math.log(v) for v in self.cfg.lambdas]))

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        y = self.g_a(x)
        return y + self.g_a_lin(x) if self.cfg.shortcut else y

    def synthesis(self, y: torch.Tensor) -> torch.Tensor:
        x = self.g_s(y)
        return x + self.g_s_lin(y) if self.cfg.shortcut else x

    @torch.no_grad()
    def init_shortcut(self, blocks: torch.Tensor, scale: float = 6.7) -> None:
        """KLT initialisation of the shortcut from training blocks (B, 3*16*16)
        in [0, 1], with the nonlinear paths' last layers zeroed, so that the
        model starts as a block-transform codec. ``scale`` puts the middle
        quality's quantization step near the rate-distortion optimum of the
        middle lambda for uniform quantization (step ~ 0.02 / sqrt(lambda))."""
        M = self.cfg.M
        mean_c = blocks.view(-1, 3, BLOCK * BLOCK).mean(dim=(0, 2))  # per colour channel
        centred = blocks.double() - mean_c.double().repeat_interleave(BLOCK * BLOCK)
        cov = centred.T @ centred / len(blocks)
        evals, evecs = torch.linalg.eigh(cov)
        basis = evecs[:, torch.argsort(evals, descending=True)[:M]].T.float()  # (M, 768)
        wa = basis.view(M, 3, BLOCK, BLOCK)
        la, ls = self.g_a_lin[0], self.g_s_lin[0]
        la.weight.copy_(wa * scale)
        la.bias.copy_(-(wa * scale * mean_c.view(1, 3, 1, 1)).sum(dim=(1, 2, 3)))
        ls.weight.copy_(wa / scale)
        ls.bias.copy_(mean_c)
        for last in (self.g_a[-1], self.g_s[-1]):
            last.weight.zero_()
            last.bias.zero_()

    # -- rate control -------------------------------------------------------
    def _interp(self, table: torch.Tensor, t: float) -> torch.Tensor:
        A = table.shape[0]
        t = min(max(float(t), 0.0), A - 1.0)
        i = min(int(math.floor(t)), A - 2) if A > 1 else 0
        f = t - i
        if A == 1:
            return table[0]
        return table[i] * (1 - f) + table[i + 1] * f

    def gains(self, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.exp(self._interp(self.log_gain, t)), torch.exp(self._interp(self.log_inv_gain, t))

    def lam(self, t: float) -> float:
        return float(torch.exp(self._interp(self.log_lambdas, t)))

    # -- hyper-synthesis outputs --------------------------------------------
    def entropy_params(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.h_s(z_hat)
        mean, log_scale = p.chunk(2, dim=1)
        return mean, log_scale

    @staticmethod
    def scale_from_log(log_scale: torch.Tensor) -> torch.Tensor:
        return torch.exp(torch.clamp(log_scale, LOG_SCALE_MIN, LOG_SCALE_MAX))

    # -- training forward ---------------------------------------------------
    # (rank, world) under data-parallel training: each rank draws the uniform
    # noise of the whole global batch (all ranks share the seed) and keeps its
    # own slice, so that N ranks train exactly like one process (train.py).
    noise_part: tuple = (0, 1)

    def _uniform_noise(self, v: torch.Tensor) -> torch.Tensor:
        rank, world = self.noise_part
        if world == 1:
            return torch.empty_like(v).uniform_(-0.5, 0.5)
        n = v.shape[0]
        fmt = (torch.channels_last if v.dim() == 4 and not v.is_contiguous()
               and v.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)
        full = torch.empty((n * world,) + tuple(v.shape[1:]), dtype=v.dtype, device=v.device,
                           memory_format=fmt).uniform_(-0.5, 0.5)
        return full[rank * n:(rank + 1) * n]

    def forward(self, x: torch.Tensor, t: float, noise: bool = True) -> dict[str, torch.Tensor]:
        """noise=True: training proxy (uniform noise for the rates);
        noise=False: what the real codec does (rounding everywhere)."""
        gain, inv_gain = self.gains(t)
        y = self.analysis(x) * gain.view(1, -1, 1, 1)
        z = self.h_a(y)
        z_hat = quantize_ste(z)
        z_noisy = z + self._uniform_noise(z) if noise else z_hat
        z_lik = self.z_prior.likelihood(z_noisy)
        mean, log_scale = self.entropy_params(z_hat)
        scale = self.scale_from_log(log_scale)
        if noise:
            y_noisy = y + self._uniform_noise(y)
        else:
            y_noisy = torch.round(y - mean) + mean
        y_lik = self.gauss.likelihood(y_noisy, mean, scale)
        y_hat = quantize_ste(y - mean) + mean
        x_hat = self.synthesis(y_hat * inv_gain.view(1, -1, 1, 1))
        return {"x_hat": x_hat, "y_lik": y_lik, "z_lik": z_lik}


def rd_loss(out: dict[str, torch.Tensor], x: torch.Tensor, lam: float) -> dict[str, torch.Tensor]:
    B, _, H, W = x.shape
    num_pixels = B * H * W
    bpp_y = -torch.log2(out["y_lik"]).sum() / num_pixels
    bpp_z = -torch.log2(out["z_lik"]).sum() / num_pixels
    bpp = bpp_y + bpp_z
    mse = torch.mean((out["x_hat"] - x) ** 2)
    loss = lam * 255.0 ** 2 * mse + bpp
    psnr = -10 * torch.log10(mse.detach().clamp_min(1e-10))
    return {"loss": loss, "bpp": bpp, "bpp_y": bpp_y, "bpp_z": bpp_z, "mse": mse, "psnr": psnr}
