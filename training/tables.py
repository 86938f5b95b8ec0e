"""Entropy-coding tables, without torch: the quantized frequency tables the
codec ships, built with the entropy coder's own CDF function (lmcodec._core),
and the fixed Gaussian scale table. Used by the hyperprior export
(training/export.py), the PCA fit (training/pca.py) and reference
(training/pca_reference.py), the reference codec and the benchmarks, so
every table in every weights file comes from one place.
"""

from __future__ import annotations

import math

import numpy as np

# Fixed table of quantized scales for the Gaussian conditional: 64 values,
# log-spaced between SCALE_MIN and SCALE_MAX. The hyper-synthesis predicts
# log(scale); the scale index is round((log s - log SCALE_MIN) / SCALE_STEP).
SCALE_MIN = 0.11
SCALE_MAX = 256.0
NUM_SCALES = 64
LOG_SCALE_MIN = math.log(SCALE_MIN)
LOG_SCALE_MAX = math.log(SCALE_MAX)
SCALE_STEP = (LOG_SCALE_MAX - LOG_SCALE_MIN) / (NUM_SCALES - 1)


def scale_table() -> np.ndarray:
    return np.exp(LOG_SCALE_MIN + SCALE_STEP * np.arange(NUM_SCALES))


Y_SUPPORT_SIGMAS = 7.0


Y_MAX_HALF = 1536


Z_SUPPORT = 1024


def _core():
    try:
        from lmcodec import _core  # type: ignore
    except ImportError as e:  # pragma: no cover
        raise SystemExit("the lmcodec extension must be built (pip install .) to export: it owns the CDF function") from e
    return _core.internal


def freq_tables(pmfs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """PMFs -> (concatenated u16 frequencies, lengths) via the coder's CDF builder."""
    core = _core()
    freqs, lengths = [], []
    for p in pmfs:
        cdf = np.asarray(core.pmf_to_quantized_cdf(np.asarray(p, dtype=np.float64)), dtype=np.int64)
        f = np.diff(cdf)
        assert f.min() >= 1 and f.max() <= 65535 and cdf[-1] == 1 << 16
        freqs.append(f.astype(np.uint16))
        lengths.append(len(f))
    return np.concatenate(freqs), np.array(lengths, dtype=np.int32)


def cdfs_from_freqs(freqs: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u16 freqs, lengths) -> (T, Lmax+1) u32 CDF matrix + cdf lengths (integer prefix sums)."""
    T = len(lengths)
    L = int(lengths.max()) + 1
    out = np.zeros((T, L), dtype=np.uint32)
    pos = 0
    for t, n in enumerate(lengths):
        out[t, 1:n + 1] = np.cumsum(freqs[pos:pos + n].astype(np.uint32))
        out[t, n + 1:] = out[t, n]
        pos += n
    return out, (lengths + 1).astype(np.int32)


def gaussian_pmfs(support_sigmas: float = Y_SUPPORT_SIGMAS, max_half: int = Y_MAX_HALF
                  ) -> tuple[list[np.ndarray], np.ndarray]:
    """Zero-centred discretised Gaussians on [-h, h], h = min(max_half, ceil(support_sigmas * scale)), one per
    scale of the table: (pmfs, offsets -h)."""
    pmfs, offsets = [], []
    for s in scale_table():
        h = int(min(max_half, max(1, math.ceil(support_sigmas * s))))
        xs = np.arange(-h, h + 1, dtype=np.float64)
        erfc = np.vectorize(math.erfc)
        up = 0.5 * erfc(-(xs + 0.5) / (s * math.sqrt(2)))
        lo = 0.5 * erfc(-(xs - 0.5) / (s * math.sqrt(2)))
        pmfs.append(up - lo)
        offsets.append(-h)
    return pmfs, np.array(offsets, dtype=np.int32)
