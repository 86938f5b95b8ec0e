"""C++ codec vs the PyTorch reference codec on the shipped weights (Kodak).

    python benchmarks/parity.py [--limit 24] [--qualities 25,50,75]

For every image and quality: are the C++ encoder's bytes identical to the
Python reference encoder's (training/reference_codec.py: PyTorch float
transforms, the same integer h_s and rANS coder)? If not, what fraction of
the coded latent symbols differ (a float rounding tie of y flipped)? And how
far apart are the pixels the two decoders make from the same stream? Needs
torch and the training package (run from the repository root).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lmcodec  # noqa: E402

KODAK = ROOT.parent / "shared" / "data" / "kodak"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default=str(KODAK))
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--qualities", default="25,50,75")
    args = ap.parse_args(argv)
    import torch

    from training.reference_codec import ReferenceCodec

    torch.set_num_threads(2)
    weights = Path(lmcodec.__file__).parent / "models" / "hyperprior.lmw"
    ref = ReferenceCodec(weights)
    cpp = lmcodec._core.Model(str(weights))
    files = sorted(Path(args.kodak).glob("*.png"))[: args.limit]
    same = total = 0
    sym_diff = sym_total = 0
    max_px = 0
    if ref.ctx is not None:  # a context model: the reference decodes its streams (it does not encode them)
        for f in files:
            img = np.asarray(Image.open(f).convert("RGB"))
            for q in (float(v) for v in args.qualities.split(",")):
                ours = cpp.encode(img, q, 2)
                ex = lmcodec._core.internal.hyperprior_explain(str(weights), ours, 2)
                _, z, r, mu, idx = ref._decode_latents(ours)
                total += 1
                same += int(all(np.array_equal(ex[k], v[0].numpy()) for k, v in
                                (("z", z), ("r", r), ("idx", idx), ("mu", mu))))
                px_c = cpp.decode(ours, 2)
                max_px = max(max_px, int(np.abs(px_c.astype(int) - ref.decode(ours).astype(int)).max()))
            print(f"{f.name}: {same}/{total} decoded to identical symbols and means so far", flush=True)
        print(f"streams the reference decodes to the C++ decoder's symbols, indexes and means: {same}/{total}")
        print(f"largest pixel difference, C++ vs PyTorch decoder on the same stream: {max_px}")
        return 0
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        for q in (float(v) for v in args.qualities.split(",")):
            ours = cpp.encode(img, q, 2)
            theirs = ref.encode(img, q)
            total += 1
            if ours == theirs:
                same += 1
            else:
                za, ra = ref.decode_symbols(theirs)
                zc, rc = ref.decode_symbols(ours)
                sym_diff += int((za != zc).sum() + (ra != rc).sum())
                sym_total += za.size + ra.size
            px_c = cpp.decode(ours, 2)
            px_r = ref.decode(ours)
            max_px = max(max_px, int(np.abs(px_c.astype(int) - px_r.astype(int)).max()))
        print(f"{f.name}: {same}/{total} identical so far", flush=True)
    print(f"streams identical to the reference: {same}/{total}")
    if sym_total:
        print(f"in the others, latent symbols that differ: {sym_diff}/{sym_total} ({100 * sym_diff / sym_total:.4f} %)")
    print(f"largest pixel difference, C++ vs PyTorch decoder on the same stream: {max_px}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
