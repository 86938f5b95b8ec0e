"""Structure-aware forging of .lmc streams (issue 27): valid containers with
recomputed CRCs, hostile header fields, and *valid* rANS payloads coded with
the shipped models' own tables, so that the forged streams get past every
framing check into the decoders' resource handling.

Used by fuzz/make_corpus.py (seeds for the libFuzzer targets),
tests/test_robustness.py (CI's short structured fuzz run) and
tests/test_limits.py (the issue's "Done when" measurements). Needs numpy and
the installed lmcodec (for _core.internal.rans_encode); reads the weights with
training/lmw.py (plain numpy, no torch).

    f = Forger()                                   # shipped models
    data = f.hyperprior_side_only(16384, 16384)    # valid z at its mode, tiny LATN
    data = f.pca_stream(8192, 8192)                # valid PCA stream (flat image)
    data = f.rgba_broken_alpha(4096, 4096)         # valid colour, hopeless ALPH
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIG = b"\x89LMC\r\n\x1a\n"


def _lmw():
    spec = importlib.util.spec_from_file_location("lmc_forge_lmw", ROOT / "training" / "lmw.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------- container


def chunk(ctype: bytes, data: bytes) -> bytes:
    head = ctype + struct.pack("<I", len(data))
    return head + data + struct.pack("<I", zlib.crc32(head + data) & 0xFFFFFFFF)


def head(width: int, height: int, channels: int, codec: int, quality_x100: int, model_id: bytes, flags: int = 0,
         tile_height: int = 0, major: int = 1, minor: int = 0, bit_depth: int = 8, reserved: int = 0) -> bytes:
    h = bytearray(40)
    h[0], h[1], h[2], h[3] = major, minor, channels, bit_depth
    struct.pack_into("<II", h, 4, width & 0xFFFFFFFF, height & 0xFFFFFFFF)
    h[12], h[13] = codec, reserved
    struct.pack_into("<H", h, 14, quality_x100 & 0xFFFF)
    h[16:32] = model_id[:16].ljust(16, b"\0")
    struct.pack_into("<II", h, 32, flags & 0xFFFFFFFF, tile_height & 0xFFFFFFFF)
    return bytes(h)


def container(head_data: bytes, chunks: List[Tuple[bytes, bytes]], endc: bool = True) -> bytes:
    out = SIG + chunk(b"HEAD", head_data) + b"".join(chunk(t, d) for t, d in chunks)
    return out + (chunk(b"ENDC", b"") if endc else b"")


def split(data: bytes) -> List[Tuple[bytes, bytes]]:
    """[(type, data)] of a well-framed stream (HEAD and ENDC included)."""
    out, pos = [], 8
    while pos + 12 <= len(data):
        (n,) = struct.unpack_from("<I", data, pos + 4)
        out.append((data[pos:pos + 4], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def rewrite(data: bytes, **fields) -> bytes:
    """Rewrites HEAD fields of a well-framed stream (any values) and every CRC."""
    layout = {"version_major": (0, "B"), "version_minor": (1, "B"), "channels": (2, "B"), "bit_depth": (3, "B"),
              "width": (4, "<I"), "height": (8, "<I"), "codec": (12, "B"), "reserved": (13, "B"),
              "quality_x100": (14, "<H"), "flags": (32, "<I"), "tile_height": (36, "<I")}
    chunks = split(data)
    h = bytearray(chunks[0][1])
    for k, v in fields.items():
        if k == "model_id":
            h[16:32] = v
        else:
            off, fmt = layout[k]
            struct.pack_into(fmt, h, off, v)
    chunks[0] = (b"HEAD", bytes(h))
    return SIG + b"".join(chunk(t, d) for t, d in chunks)


# ---------------------------------------------------------------- tables


class Tables:
    """A model's CDF table set in rans_encode's layout."""

    def __init__(self, freqs: np.ndarray, lengths: np.ndarray, offsets: np.ndarray):
        lengths = np.asarray(lengths, np.int64)
        stride = int(lengths.max()) + 1
        self.cdfs = np.zeros((len(lengths), stride), np.int32)
        pos = 0
        for t, n in enumerate(lengths):
            c = np.concatenate([[0], np.cumsum(freqs[pos:pos + n].astype(np.int64))])
            self.cdfs[t, :n + 1] = c
            self.cdfs[t, n + 1:] = c[-1]
            pos += int(n)
        self.lengths = (lengths + 1).astype(np.int32)  # CDF entries
        self.offsets = np.asarray(offsets, np.int32)
        f = np.diff(self.cdfs, axis=1)
        self.mode = np.array([int(np.argmax(f[t, :self.lengths[t] - 2])) + int(self.offsets[t])
                              for t in range(len(lengths))], np.int32)  # most likely regular value
        self.max_freq = np.array([int(f[t, :self.lengths[t] - 1].max()) for t in range(len(lengths))])

    def encode(self, symbols: np.ndarray, indexes: np.ndarray) -> bytes:
        from lmcodec import _core

        return bytes(_core.internal.rans_encode(np.ascontiguousarray(symbols, np.int32),
                                       np.ascontiguousarray(indexes, np.int32), self.cdfs, self.lengths,
                                       self.offsets))


class Forger:
    def __init__(self, models_dir: Optional[Path] = None):
        import lmcodec

        self.models_dir = Path(models_dir) if models_dir else Path(lmcodec.__file__).resolve().parent / "models"
        lmw = _lmw()
        self.ids: Dict[str, bytes] = {}
        self.meta: Dict[str, dict] = {}
        self.tensors: Dict[str, dict] = {}
        for method in ("hyperprior", "pca"):
            wf = lmw.read(self.models_dir / f"{method}.lmw")
            self.ids[method] = bytes(wf.model_id[:16])
            self.meta[method] = wf.meta
            self.tensors[method] = wf.tensors
        t = self.tensors["hyperprior"]
        self.z = Tables(t["z.freqs"], t["z.lengths"], t["z.offsets"])
        self.y = Tables(t["y.freqs"], t["y.lengths"], t["y.offsets"])
        # the hyperprior's latents chunk: LATC with a context model (docs/format.md 3.2), else LATN
        self.latents_chunk = b"LATC" if "arch.ctx" in self.meta["hyperprior"] else b"LATN"
        self.N = int(self.meta["hyperprior"]["N"])
        self.M = int(self.meta["hyperprior"]["M"])
        p = self.tensors["pca"]
        self.pca = Tables(p["tables.freqs"], p["tables.lengths"], p["tables.offsets"])

    # --------------------------------------------------------- payloads

    def z_payload(self, width: int, height: int, values: Optional[np.ndarray] = None) -> bytes:
        """A valid SIDE payload for a width x height hyperprior stream: every
        hyper-latent at its table's mode (the cheapest valid z), or `values`
        (per channel) repeated."""
        zh, zw = -(-height // 64), -(-width // 64)
        per = zh * zw
        vals = self.z.mode if values is None else np.asarray(values, np.int32)
        sym = np.repeat(vals[: self.N], per).astype(np.int32)
        idx = np.repeat(np.arange(self.N, dtype=np.int32), per)
        return self.z.encode(sym, idx)

    def pca_indexes(self, quality_x100: int) -> np.ndarray:
        m = self.meta["pca"]
        lo, hi = int(m["quant.logstep_min"]), int(m["quant.logstep_max"])
        ls = hi - ((quality_x100 - 100) * (hi - lo) + 4950) // 9900
        logscale = self.tensors["pca"]["pca.logscale"].astype(np.int64)
        d = logscale - ls - int(m["tables.base"])
        return np.where(d < 0, 0, np.minimum(d // int(m["tables.step"]), int(m["tables.count"]) - 1)).astype(np.int32)

    def pca_payload(self, width: int, height: int, quality_x100: int = 5000, seed: Optional[int] = None) -> bytes:
        """A valid LATN payload for a width x height PCA stream: all
        coefficients 0 (the model's mean block everywhere), or with `seed`
        small random residuals on the first coefficients."""
        k = self.pca_indexes(quality_x100)
        blocks = (-(-width // 8)) * (-(-height // 8))
        idx = np.tile(k, blocks)
        sym = np.zeros(blocks * 192, np.int32)
        if seed is not None:
            rng = np.random.default_rng(seed)
            sym.reshape(blocks, 192)[:, :3] = rng.integers(-2, 3, (blocks, 3))
        return self.pca.encode(sym, idx)

    @staticmethod
    def alpha_payload(n: int, stream: Optional[bytes] = None, skew: int = 65000) -> bytes:
        """ALPH mode 1 with a valid table (residual 0 takes `skew` of 2^16) and
        `stream` (default: the valid stream of n zero residuals)."""
        freqs = np.ones(257, np.int64)
        freqs[0] = skew
        freqs[1] = 65536 - skew - 255
        table = b"".join(struct.pack("<H", int(f)) for f in freqs)
        if stream is None:
            from lmcodec import _core

            cdf = np.concatenate([[0], np.cumsum(freqs)]).astype(np.int32)[None, :]
            stream = bytes(_core.internal.rans_encode(np.zeros(n, np.int32), np.zeros(n, np.int32), cdf,
                                             np.array([258], np.int32), np.array([0], np.int32)))
        return b"\x01" + table + stream

    # ---------------------------------------------------------- streams

    def hyperprior_side_only(self, width: int, height: int, latn: bytes = b"\0" * 64, channels: int = 3,
                             quality_x100: int = 5000) -> bytes:
        """Valid container, valid SIDE for width x height, latents (LATN / LATC) far too short."""
        return container(head(width, height, channels, 1, quality_x100, self.ids["hyperprior"]),
                         [(b"SIDE", self.z_payload(width, height)), (self.latents_chunk, latn)])

    def pca_stream(self, width: int, height: int, channels: int = 3, quality_x100: int = 5000,
                   seed: Optional[int] = None, alpha: Optional[bytes] = None) -> bytes:
        """A valid PCA stream (decodes) of any size."""
        chunks = [(b"LATN", self.pca_payload(width, height, quality_x100, seed))]
        flags = 0
        if channels == 4:
            chunks.append((b"ALPH", alpha if alpha is not None else self.alpha_payload(width * height)))
            flags = 1
        return container(head(width, height, channels, 2, quality_x100, self.ids["pca"], flags), chunks)

    def rgba_broken_alpha(self, width: int, height: int, alpha_stream: bytes = b"\0" * 256) -> bytes:
        """Valid PCA colour, ALPH with a valid table and a hopeless stream."""
        return self.pca_stream(width, height, 4, alpha=self.alpha_payload(width * height, alpha_stream))

    def pca_relaid(self, width: int, height: int, quality_x100: int = 5000, seed: int = 1) -> bytes:
        """A valid PCA stream for width x height whose HEAD then says height x
        width: the same number of 8x8 blocks, laid out again (decodes to a
        re-tiled image; documented in docs/format.md)."""
        return rewrite(self.pca_stream(width, height, quality_x100=quality_x100, seed=seed), width=height,
                       height=width)

    def variants(self, rng: np.random.Generator, max_side: int = 1024) -> List[Tuple[str, bytes]]:
        """A mixed bag of small forged streams (each a few KB at most) for the
        fuzz corpora and CI: hostile sizes on valid payloads, re-laid PCA
        blocks, hopeless alpha, duplicated / reordered / dropped chunks."""
        out = []
        s = int(rng.integers(64, max_side + 1))
        out.append(("hp_side_only", self.hyperprior_side_only(s, s, latn=bytes(rng.integers(0, 256, 64, np.uint8)))))
        out.append(("hp_side_only_gray", self.hyperprior_side_only(max_side, 64, channels=1)))
        out.append(("pca_flat", self.pca_stream(int(rng.integers(8, 257)), int(rng.integers(8, 257)))))
        out.append(("pca_relaid", self.pca_relaid(64, 16)))
        out.append(("pca_rgba_alpha_dry", self.rgba_broken_alpha(128, 128)))
        good = self.pca_stream(32, 24, seed=3)
        c = split(good)
        out.append(("dup_latn", SIG + b"".join(chunk(t, d) for t, d in c[:2] + c[1:])))
        out.append(("no_endc", SIG + b"".join(chunk(t, d) for t, d in c[:-1])))
        out.append(("pca_wrong_quality", rewrite(good, quality_x100=int(rng.integers(100, 10001)))))
        out.append(("pca_as_rgba_no_alpha", rewrite(good, channels=4)))
        out.append(("pca_striped", rewrite(good, tile_height=8)))
        return out
