#!/usr/bin/env python3
"""Regenerates the fuzz seed corpora from the shipped models.

    python fuzz/make_corpus.py            # writes fuzz/corpus/{decode,rans,latents}/
    python fuzz/make_corpus.py --check    # exit 1 if the committed decode seeds no longer
                                          # match the shipped models (model id changed)

Run it after re-exporting the hyperprior weights: the streams embed the model
id and are coded with the model's tables. (fuzz_decode repairs the model id of
its inputs, so old seeds still reach the decoder, but fresh ones decode.)

Decode seeds: small synthetic images (16x16 .. 64x48), gray / RGB / RGBA,
both codecs, several qualities, one with metadata chunks; plus forged
streams (fuzz/forge.py, issue 27): valid containers with recomputed CRCs
around payloads coded with the models' own tables and hostile headers (a
1024x1024 header over a valid side payload and a tiny LATN, re-laid PCA
blocks, a hopeless alpha stream, duplicated / missing chunks). Every file
<= 4 KB, at most 45 files in all. rANS seeds: a few inputs in fuzz_rans'
layout (see fuzz/fuzz_rans.cc), made by the real encoder. Latent seeds: a
few inputs in fuzz_latents' layout (see fuzz/fuzz_latents.cc), some in its
forge mode.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fuzz" / "corpus"
MAX_FILES = 45
MAX_BYTES = 4096


def image(w: int, h: int, ch: int, seed: int) -> np.ndarray:
    """Smooth gradients + a few edges + mild noise (codes small, decodes like a photo)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(max(ch, 3)):
        fx, fy, ph = rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3), rng.uniform(0, 6.3)
        p = 128 + 90 * np.sin(fx * xx + ph) * np.cos(fy * yy) + (xx > w / 2) * 30 + rng.normal(0, 4, (h, w))
        planes.append(p)
    arr = np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)
    if ch == 1:
        return arr[:, :, 0].copy()
    if ch == 4:
        alpha = np.where((xx + yy) % 17 < 12, 255, (xx * 4) % 256).astype(np.uint8)
        return np.dstack([arr[:, :, :3], alpha])
    return arr[:, :, :3].copy()


# (name, width, height, channels, method, quality, extra)
DECODE_SEEDS = [
    ("hp_rgb_16x16_q50", 16, 16, 3, "hyperprior", 50, None),
    ("hp_rgb_64x48_q10", 64, 48, 3, "hyperprior", 10, None),
    ("hp_rgb_32x24_q90", 32, 24, 3, "hyperprior", 90, None),
    ("hp_gray_24x16_q75", 24, 16, 1, "hyperprior", 75, None),
    ("hp_gray_48x32_q1", 48, 32, 1, "hyperprior", 1, None),
    ("hp_rgba_16x16_q60", 16, 16, 4, "hyperprior", 60, None),
    ("hp_rgba_40x24_q30", 40, 24, 4, "hyperprior", 30, None),
    ("hp_rgba_const_16x16_q50", 16, 16, 4, "hyperprior", 50, "const_alpha"),
    ("hp_rgb_meta_16x16_q40", 16, 16, 3, "hyperprior", 40, "meta"),
    ("pca_rgb_16x16_q50", 16, 16, 3, "pca", 50, None),
    ("pca_rgb_64x48_q20", 64, 48, 3, "pca", 20, None),
    ("pca_rgb_24x16_q95", 24, 16, 3, "pca", 95, None),
    ("pca_gray_16x24_q70", 16, 24, 1, "pca", 70, None),
    ("pca_gray_33x17_q5", 33, 17, 1, "pca", 5, None),
    ("pca_rgba_16x16_q80", 16, 16, 4, "pca", 80, None),
    ("pca_rgba_24x24_q40", 24, 24, 4, "pca", 40, None),
    ("pca_rgb_meta_16x16_q60", 16, 16, 3, "pca", 60, "meta"),
    ("hp_rgb_qmap_96x80_q50", 96, 80, 3, "hyperprior", 50, "qmap"),
]


def make_decode_seeds(lmcodec) -> dict:
    out = {}
    for i, (name, w, h, ch, method, q, extra) in enumerate(DECODE_SEEDS):
        img = image(w, h, ch, 100 + i)
        kw = {}
        if extra == "const_alpha":
            img[:, :, 3] = 200
        elif extra == "meta":
            kw = dict(icc_profile=b"\x00\x00\x00\x10fake-icc", exif=b"II*\x00\x08\x00\x00\x00", xmp=b"<x:xmpmeta/>")
        elif extra == "qmap":  # a spatial quality map (QMAP chunk)
            kw = dict(quality_map=np.array([[20, -20], [-5, 5]]))
        data = lmcodec.encode(img, q, method=method, threads=1, **kw)
        lmcodec.decode(data)  # must be valid
        out[f"decode/{name}.lmc"] = data
    return out


def make_rans_seeds(core) -> dict:
    """Seeds in fuzz_rans' layout: mode byte, u16 n, index pattern byte, body."""
    rng = np.random.default_rng(7)
    # A 33-symbol table like fuzz_rans' table 0 (offset -16) is enough to get
    # valid streams of the right shape; the fuzzer's own tables differ only
    # slightly, so these seeds start close to valid.
    pmf = np.exp(-np.abs(np.arange(33) - 16) / 3.0)
    pmf = pmf / pmf.sum() * 0.999
    cdf = np.asarray(core.pmf_to_quantized_cdf(pmf), dtype=np.int32)
    out = {}
    for k, n in enumerate((1, 4, 7, 64, 300)):
        sym = np.clip(np.round(rng.laplace(0, 3, n)), -40, 40).astype(np.int32)
        if n >= 7:
            sym[3] = 1 << 30  # an escape
        idx = np.zeros(n, np.int32)
        stream = bytes(core.rans_encode(sym, idx, cdf[None, :], np.array([len(cdf)], np.int32),
                                        np.array([-16], np.int32)))
        out[f"rans/decode_n{n}"] = bytes([0]) + struct.pack("<H", n) + bytes([0]) + stream
        out[f"rans/roundtrip_n{n}"] = bytes([1]) + struct.pack("<H", n) + bytes([0x31 + k]) + sym.tobytes()
    return out


def make_latents_seeds() -> dict:
    """Seeds in fuzz_latents' layout: selector, w-1, h-1, quality (u16), symbol
    source; forge mode (selector bit 3): then forge flags, two u16 sizes and a
    cut byte before the symbol source."""
    rng = np.random.default_rng(11)
    out = {}
    for name, sel, w, h, q in (("hp_rgb", 0b010, 24, 16, 5000), ("pca_gray", 0b001, 17, 9, 2000),
                               ("hp_rgba", 0b100, 16, 16, 9000)):
        src = bytes(rng.choice([0, 0, 0, 0x85, 0x9A, 0xC1, 0xF3, 0xFE, 0xFF], size=200).astype(np.uint8))
        out[f"latents/{name}"] = bytes([sel, w - 1, h - 1]) + struct.pack("<H", q - 100) + src
    # forge mode: (flags, width - 1, height - 1, cut)
    for name, sel, flags, fw, fh, cut in (("forge_hp_big_header", 0b1010, 0b0000001, 2047, 2047, 0),
                                          ("forge_hp_dry_latn", 0b1010, 0b0000011, 1023, 1023, 8),
                                          ("forge_pca_relaid", 0b1011, 0b0000001, 15, 63, 0),
                                          ("forge_pca_rgba_dry_alpha", 0b1101, 0b0001001, 511, 511, 20),
                                          ("forge_hp_flip_dup", 0b1010, 0b1100000, 23, 15, 77)):
        src = bytes(rng.choice([0, 0, 0, 0, 0x85, 0x9A], size=120).astype(np.uint8))
        out[f"latents/{name}"] = (bytes([sel, 23, 15]) + struct.pack("<H", 4900) + bytes([flags])
                                  + struct.pack("<HH", fw, fh) + bytes([cut]) + src)
    return out


def make_forged_seeds() -> dict:
    """Forged decode seeds (fuzz/forge.py): valid payloads, hostile headers."""
    sys.path.insert(0, str(ROOT / "fuzz"))
    import forge

    f = forge.Forger()
    out = {}
    for name, data in f.variants(np.random.default_rng(27), max_side=1024):
        if len(data) <= MAX_BYTES:
            out[f"decode/forged_{name}.lmc"] = data
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only check that the decode seeds match the shipped models")
    ap.add_argument("--out", type=Path, default=CORPUS)
    args = ap.parse_args()
    import lmcodec
    from lmcodec import _core

    if args.check:
        ids = {name: lmcodec.model_info(name)["model_id"] for name in ("hyperprior", "pca")}
        stale = []
        for p in sorted((args.out / "decode").glob("*.lmc")):
            try:
                inf = lmcodec.info(p.read_bytes(), sections=False)  # the header only
            except lmcodec.LmcError:
                continue  # a seed damaged on purpose (make_forged_seeds)
            if inf.codec in ids and inf.model_id != ids[inf.codec]:
                stale.append(p.name)
        if stale:
            print(f"stale seeds (re-run fuzz/make_corpus.py): {', '.join(stale)}")
            return 1
        print("corpus matches the shipped models")
        return 0

    files = {**make_decode_seeds(lmcodec), **make_forged_seeds(), **make_rans_seeds(_core.internal), **make_latents_seeds()}
    assert len(files) <= MAX_FILES, len(files)
    for sub in ("decode", "rans", "latents"):
        d = args.out / sub
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():
            if old.is_file():
                old.unlink()
    for rel, data in sorted(files.items()):
        assert len(data) <= MAX_BYTES, (rel, len(data))
        (args.out / rel).write_bytes(data)
        print(f"{rel:40s} {len(data):5d} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
