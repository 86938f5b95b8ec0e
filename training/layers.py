"""Layers shared by the lmcodec models.

Every layer here has a counterpart in the C++ core (src/cpp/); the export
(training/export.py) writes each one's parameters in the form the core reads.

* ``conv(c_in, c_out, k, s)``  -- 'same'-padded convolution, padding k//2.
* ``deconv(c_in, c_out, k, s)`` -- transposed convolution, padding k//2 and
  output_padding s-1, so that the output is exactly s times the input.
* ``GDN`` -- the simplified generalized divisive normalization of Johnston et
  al. 2019 (CVPR): y_i = x_i / (beta_i + sum_j gamma_ij |x_j|); the inverse
  form multiplies instead of dividing. It costs one 1x1 convolution, no
  square roots, and trains as well as the original GDN of Balle et al.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(c_in: int, c_out: int, k: int = 5, s: int = 2) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=s, padding=k // 2)


def deconv(c_in: int, c_out: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(c_in, c_out, k, stride=s, padding=k // 2, output_padding=s - 1)


class GDN(nn.Module):
    """Simplified GDN (inverse=False) or inverse GDN (inverse=True).

    beta and gamma are kept non-negative by squaring a free parameter and
    flooring it; ``effective_params`` gives the values the core uses.

    gamma_raw starts as a scaled identity, and the square has zero gradient
    at 0, so the off-diagonal entries stay exactly 0 through training: the
    layer is a per-channel x * (beta + gamma_ii |x|)^(+-1). The C++ core
    relies on nothing of the kind, but detects it and then skips the c x c
    product (docs/architecture.md, "GDN is diagonal"); the model's weights
    and streams are the same either way.
    """

    BETA_MIN = 1e-6
    GAMMA_INIT = 0.1

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.channels = channels
        self.beta_raw = nn.Parameter(torch.ones(channels))
        self.gamma_raw = nn.Parameter(torch.eye(channels) * (self.GAMMA_INIT ** 0.5))

    def effective_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        beta = self.beta_raw.square() + self.BETA_MIN
        gamma = self.gamma_raw.square()
        return beta, gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta, gamma = self.effective_params()
        norm = F.conv2d(x.abs(), gamma.view(self.channels, self.channels, 1, 1), beta)
        return x * norm if self.inverse else x / norm
