"""Reference codec in Python: torch for the float transforms, the integer h_s
of training/export.py, and the C++ entropy coder and container from
lmcodec._core. It writes and reads real .lmc streams and is the cross-check
for the C++ codec (which must produce the same streams and pixels).

Stream semantics (what both implementations do):
  pad the image to a multiple of 64 by edge replication;
  t = position(quality)            quality stored as round(q*100)/100
  y = (g_a(x) + g_a_lin(x)) * gain(t)    z = round(h_a(y))
  SIDE = rANS(z, table = channel)  channel-major order (c, h, w)
  (mean, ls) = int_h_s(z)          mu = mean / 2^F, k = scale_index(ls)
  r = round(y - mu)                LATN = rANS(r, table = k)
      (with rdo: r = the integer on either side of y - mu with the lower
       rdo.cost[c](t) * w_k * (y - mu - r)^2 + bits(r | k); see quantize_rdo)
  with a context model (arch.ctx; training/int_context.py): mu and k come
  pass by pass from h_s plus the context nets, and the latents are LATC
  band streams (decoded here; this reference does not encode them);
  decoder: y_hat = r + mu; x_hat = (g_s + g_s_lin)(y_hat * inv_gain(t)), cropped, *255,
  rounded half-to-even and clamped to 0..255.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import lmw
from .int_context import IntContextModel
from .int_hs import IntHyperSynthesis, scale_indexes
from .tables import cdfs_from_freqs
from .weights_io import config_from_meta, load_hyperprior_weights
from .models import arch, quality_to_position

CODEC_HYPERPRIOR = 1


def _core():
    from lmcodec import _core  # type: ignore

    return _core.internal


@dataclass
class Tables:
    cdfs: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray


def _code_length(cdfs: np.ndarray, s: np.ndarray, n: np.ndarray, rows: np.ndarray) -> float:
    """Ideal code length (bits) of symbols s under the 16-bit CDF rows cdfs[rows]:
    a regular symbol (0 <= s < n) costs -log2 p; anything else the escape
    symbol (index n) plus 6 + floor(log2 m) raw bits, as the rANS coder
    writes it (m = -s below the table, s - n + 1 above)."""
    s = np.asarray(s, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    inside = (s >= 0) & (s < n)
    sym = np.where(inside, s, n)
    cdf = cdfs.astype(np.float64)
    p = (cdf[rows, sym + 1] - cdf[rows, sym]) / 65536.0
    raw = np.where(inside, 0, _escape_raw_bits(np.where(inside, 1, np.where(s < 0, -s, s - n + 1))))
    return float(-np.log2(p).sum() + raw.sum())


def _escape_raw_bits(m: np.ndarray) -> np.ndarray:
    """The raw bits after an escape symbol for magnitude m >= 1 (int64):
    6 length bits + floor(log2 m), exact for integers (guards the float
    log2's rounding at powers of two)."""
    nb = np.floor(np.log2(np.maximum(m, 1).astype(np.float64))).astype(np.int64)
    nb = np.where((1 << (nb + 1)) <= m, nb + 1, np.where((1 << nb) > m, nb - 1, nb))
    return 6 + nb


class ReferenceCodec:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        wf = lmw.read(self.path)
        self.meta, self.tensors, self.model_id = wf.meta, wf.tensors, wf.model_id
        self.cfg = config_from_meta(self.meta)
        self.model = load_hyperprior_weights(None, self.path).eval()
        self.hs = IntHyperSynthesis(arch(self.cfg)["h_s"], self.tensors, self.meta)
        # a context model (issue 21): its streams carry LATC instead of LATN (decode only here)
        self.ctx = IntContextModel.from_weights(self.meta, self.tensors, self.hs) if "arch.ctx" in self.meta else None
        self.frac = int(self.meta["hs.frac_out"])
        self.base = int(self.meta["scale_index.base"])
        self.step = int(self.meta["scale_index.step"])
        self.count = int(self.meta["scale.count"])
        self.z_tables = self._tables("z")
        self.y_tables = self._tables("y")
        self.rdo_cost = self.tensors.get("rdo.cost")
        self.rdo_scale_power = float(self.meta.get("rdo.scale_power", 0.0))
        self.log_scale_step = math.log(float(self.meta["scale.max"]) / float(self.meta["scale.min"])) / (self.count - 1)
        yc = self.y_tables
        self.y_bits = np.zeros(yc.cdfs.shape, dtype=np.float32)  # [T][stride]
        for k in range(yc.cdfs.shape[0]):
            n = int(yc.lengths[k])
            freq = np.diff(yc.cdfs[k, :n].astype(np.int64))
            self.y_bits[k, :n - 1] = (16.0 - np.log2(freq.astype(np.float64))).astype(np.float32)

    def _tables(self, prefix: str) -> Tables:
        cdfs, lengths = cdfs_from_freqs(self.tensors[f"{prefix}.freqs"], self.tensors[f"{prefix}.lengths"])
        return Tables(cdfs, lengths, np.asarray(self.tensors[f"{prefix}.offsets"], dtype=np.int32))

    # ------------------------------------------------------------------
    @staticmethod
    def _position(quality_x100: int, anchors: int) -> float:
        return quality_to_position(quality_x100 / 100.0, anchors)

    def _params(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.hs(z_hat)
        mean_i, ls_i = self.hs.split(out)
        mu = mean_i.to(torch.float32) / float(1 << self.frac)
        idx = scale_indexes(ls_i, self.base, self.step, self.count).to(torch.int32)
        return mu, idx

    def _symbol_bits(self, v: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Code length (bits, float32) of values v (int64) under y tables k, escapes included."""
        yc = self.y_tables
        n = yc.lengths[k].astype(np.int64) - 2
        s = v - yc.offsets[k].astype(np.int64)
        inside = (s >= 0) & (s < n)
        bits = self.y_bits[k, np.where(inside, s, n)]
        raw = _escape_raw_bits(np.where(s < 0, -s, s - n + 1))
        return np.where(inside, bits, bits + raw.astype(np.float32)).astype(np.float32)

    def rdo_costs(self, qx: int) -> np.ndarray:
        K = np.asarray(self.rdo_cost, dtype=np.float64)
        A = K.shape[0]
        t = self._position(qx, A)  # the anchor position gains() uses
        i = min(int(math.floor(t)), A - 2) if A > 1 else 0
        f = t - i if A > 1 else 0.0
        lk = np.log(K)
        v = np.exp(lk[i] * (1 - f) + lk[i + 1] * f) if A > 1 else np.exp(lk[0])
        return v.astype(np.float32)

    def scale_weights(self, idx: np.ndarray) -> np.ndarray:
        """w_t = (s_t / s_median)^p per scale index t (float32), p = rdo.scale_power;
        t_median = the smallest index with at least half of the elements at or below it."""
        if self.rdo_scale_power <= 0:
            return np.ones(self.count, dtype=np.float32)
        hist = np.bincount(idx.reshape(-1), minlength=self.count).astype(np.int64)
        t_med = int(np.argmax(2 * np.cumsum(hist) >= idx.size))
        t = np.arange(self.count, dtype=np.float64)
        return np.exp(self.rdo_scale_power * self.log_scale_step * (t - t_med)).astype(np.float32)

    def quantize_rdo(self, res: np.ndarray, idx: np.ndarray, qx: int) -> np.ndarray:
        """The C++ encoder's choice (hyperprior.cc, quantize_latents), float32 in
        the same order. res = y - mu [M, h, w] float32, idx the scale indexes."""
        res = res.astype(np.float32)
        r0 = np.round(res)  # half to even, as nearbyint
        r1 = np.where(res >= r0, r0 + np.float32(1), r0 - np.float32(1)).astype(np.float32)
        k = self.rdo_costs(qx)[:, None, None]
        d0 = (res - r0).astype(np.float32)
        d1 = (res - r1).astype(np.float32)
        idx = idx.astype(np.int64)
        b0 = self._symbol_bits(r0.astype(np.int64), idx)
        b1 = self._symbol_bits(r1.astype(np.int64), idx)
        w = k * self.scale_weights(idx)[idx]
        j0 = (w * d0) * d0 + b0
        j1 = (w * d1) * d1 + b1
        return np.where(j1 < j0, r1, r0)

    @torch.no_grad()
    def latents(self, x: torch.Tensor, qx: int, rdo: bool = True) -> dict:
        if self.ctx is not None:
            raise NotImplementedError("the reference encodes the plain hyperprior; a context model's LATC "
                                      "streams it decodes only (see _decode_context)")
        """What the encoder computes for a batch x (B, 3, H, W) in [0, 1], H and W
        multiples of 64, at quality qx / 100: y, z_hat, mu, the scale indexes
        and the coded integers r (RDO-quantised unless rdo is False)."""
        t = self._position(qx, self.cfg.anchors)
        gain, _ = self.model.gains(t)
        y = self.model.analysis(x) * gain.view(1, -1, 1, 1)
        z_hat = torch.round(self.model.h_a(y))
        mu, idx = self._params(z_hat)
        r = torch.round(y - mu)
        if rdo and self.rdo_cost is not None and r.abs().max() < 1e9:
            r = torch.stack([torch.from_numpy(self.quantize_rdo((y - mu)[i].numpy(), idx[i].numpy(), qx))
                             for i in range(x.shape[0])])
        return {"qx": qx, "t": t, "y": y, "z_hat": z_hat, "mu": mu, "idx": idx, "r": r}

    def analyse(self, image: np.ndarray, quality: float, rdo: bool = True) -> dict:
        """Everything the encoder computes for one image (for tests and RD estimates)."""
        H, W = image.shape[:2]
        qx = int(round(min(100.0, max(1.0, float(quality))) * 100))
        x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float().unsqueeze(0) / 255.0  # a writable copy
        Hp, Wp = -(-H // 64) * 64, -(-W // 64) * 64
        x = F.pad(x, (0, Wp - W, 0, Hp - H), mode="replicate")
        return {**self.latents(x, qx, rdo), "size": (H, W)}

    def encode(self, image: np.ndarray, quality: float, rdo: bool = True) -> bytes:
        core = _core()
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("reference codec takes HxWx3 uint8")
        a = self.analyse(image, quality, rdo)
        z = a["z_hat"][0].to(torch.int64)
        zc = z.shape[0]
        z_sym = z.reshape(-1).clamp(-(2**31) + 1, 2**31 - 1).to(torch.int32).numpy()
        z_idx = np.repeat(np.arange(zc, dtype=np.int32), z.shape[1] * z.shape[2])
        side = core.rans_encode(z_sym, z_idx, self.z_tables.cdfs, self.z_tables.lengths, self.z_tables.offsets)
        r = a["r"][0].reshape(-1).clamp(-(2**31) + 1, 2**31 - 1).to(torch.int32).numpy()
        idx = a["idx"][0].reshape(-1).numpy().astype(np.int32)
        lat = core.rans_encode(r, idx, self.y_tables.cdfs, self.y_tables.lengths, self.y_tables.offsets)
        H, W = a["size"]
        header = {"width": W, "height": H, "channels": 3, "bit_depth": 8, "codec": CODEC_HYPERPRIOR,
                  "quality": a["qx"] / 100.0, "model_id": self.model_id, "flags": 0, "tile_height": 0}
        return core.container_write(header, [(b"SIDE", side), (b"LATN", lat)])

    @torch.no_grad()
    def decode_symbols(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        """The coded symbols of a stream: z (N, zh, zw) and r (M, yh, yw), int32."""
        _, z_hat, r, _, _ = self._decode_latents(data)
        return z_hat[0].numpy().astype(np.int32), r[0].numpy().astype(np.int32)

    @torch.no_grad()
    def decode(self, data: bytes) -> np.ndarray:
        (H, W, t), z_hat, r, mu, _ = self._decode_latents(data)
        y_hat = r.to(torch.float32) + mu
        _, inv_gain = self.model.gains(t)
        x_hat = self.model.synthesis(y_hat * inv_gain.view(1, -1, 1, 1))[0, :, :H, :W]
        out = torch.round(x_hat.clamp(0, 1) * 255.0).to(torch.uint8).permute(1, 2, 0).numpy()
        return np.ascontiguousarray(out)

    def _decode_latents(self, data: bytes):
        core = _core()
        header, chunks = core.container_read(data)
        if bytes(header["model_id"]) != self.model_id:
            raise ValueError("stream was made with other weights")
        chunks = {(c[0].decode() if isinstance(c[0], bytes) else c[0]): c[1] for c in chunks}
        H, W = header["height"], header["width"]
        Hp, Wp = -(-H // 64) * 64, -(-W // 64) * 64
        qx = int(round(header["quality"] * 100))
        t = self._position(qx, self.cfg.anchors)
        N, M = self.cfg.N, self.cfg.M
        zh, zw = Hp // 64, Wp // 64
        z_idx = np.repeat(np.arange(N, dtype=np.int32), zh * zw)
        z = core.rans_decode(chunks["SIDE"], z_idx, self.z_tables.cdfs, self.z_tables.lengths, self.z_tables.offsets)
        z_hat = torch.from_numpy(z.astype(np.int64)).view(1, N, zh, zw)
        if self.ctx is not None:
            if "LATN" in chunks or "LATC" not in chunks:
                raise ValueError("a context model's stream needs a LATC chunk (and no LATN)")
            mu, idx, r = self._decode_context(chunks["LATC"], z_hat, Hp // 16, Wp // 16)
            return (H, W, t), z_hat, r, mu, idx
        mu, idx = self._params(z_hat)
        r = core.rans_decode(chunks["LATN"], idx.reshape(-1).numpy().astype(np.int32), self.y_tables.cdfs,
                             self.y_tables.lengths, self.y_tables.offsets)
        r = torch.from_numpy(r.astype(np.int64)).view(1, M, Hp // 16, Wp // 16)
        return (H, W, t), z_hat, r, mu, idx

    BAND_ROWS = 32  # latent rows per LATC band stream (docs/format.md)

    def _decode_context(self, lat: bytes, z_hat: torch.Tensor, yh: int, yw: int):
        """LATC (docs/format.md 3.2): K = ceil(yh / 32) bands, each coded on its
        own (the context model sees only the band's rows), one stream per
        band, the sizes of the first K - 1 as LEB128; a band's symbols in the
        context model's pass order (channel, row, column of the pass's positions)."""
        core = _core()
        M, B = self.cfg.M, self.BAND_ROWS
        K = -(-yh // B)
        pos, sizes = 0, []
        for _ in range(K - 1):
            v, shift = 0, 0
            while True:
                byte = lat[pos]
                pos += 1
                v |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            sizes.append(v)
        sizes.append(len(lat) - pos - sum(sizes))
        if sizes[-1] < 0:
            raise ValueError("LATC band sizes exceed the chunk")
        yt = self.y_tables
        hs = self.hs(z_hat)
        mus, idxs, rs = [], [], []
        for b in range(K):  # each band on its own: context within the band, one stream
            r0, r1 = B * b, min(yh, B * (b + 1))
            dec = core.RansDecoder(lat[pos:pos + sizes[b]], M * (r1 - r0) * yw, yt.cdfs, yt.lengths, yt.offsets)
            pos += sizes[b]

            def code(gi, phase, mu_q, idx, mask, dec=dec):
                r = torch.zeros_like(mu_q)
                r[mask] = torch.from_numpy(dec.decode(idx[mask].numpy().astype(np.int32)).astype(np.int64))
                return r  # mask order = (channel, row, column): the stream's

            mu_b, idx_b, r_b = self.ctx.run(hs[:, :, r0:r1], code)
            dec.finish()
            mus.append(mu_b)
            idxs.append(idx_b)
            rs.append(r_b)
        mu_q, idx, r = torch.cat(mus, 2), torch.cat(idxs, 2), torch.cat(rs, 2)
        return mu_q.to(torch.float32) / float(1 << self.frac), idx.to(torch.int32), r

    def estimated_bits(self, image: np.ndarray, quality: float, rdo: bool = True) -> float:
        """Ideal code length (bits) under the quantized tables: the rate the coder should hit."""
        a = self.analyse(image, quality, rdo)
        bits = 0.0
        z = a["z_hat"][0].to(torch.int64)
        zc = self.z_tables
        for c in range(z.shape[0]):
            bits += _code_length(zc.cdfs[c][None, :], z[c].reshape(-1).numpy() - zc.offsets[c],
                                 np.full(z[c].numel(), zc.lengths[c] - 2), np.zeros(z[c].numel(), dtype=np.int64))
        yc = self.y_tables
        r = a["r"][0].reshape(-1).to(torch.int64).numpy()
        idx = a["idx"][0].reshape(-1).numpy().astype(np.int64)
        bits += _code_length(yc.cdfs, r - yc.offsets[idx], yc.lengths[idx] - 2, idx)
        return bits
