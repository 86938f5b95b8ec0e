"""Regenerate the golden vectors in tests/data/ from the shipped weights.

    python tools/make_golden.py

Writes golden_<method>.png (a 72x104 crop of the packaged sample), the .lmc
stream the C++ encoder makes of it at quality 60, and golden.json with the
model ids and the SHA-256 of the decoded pixels. Run it whenever the shipped
weights change (tests/test_golden.py tells you when).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

import lmcodec

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sample = np.asarray(Image.open(ROOT / "python" / "lmcodec" / "data" / "sample.png").convert("RGB"))
    crop = np.ascontiguousarray(sample[150:222, 200:304])
    Image.fromarray(crop).save(OUT / "golden.png")
    info = {}
    for method in ("hyperprior", "pca"):
        data = lmcodec.encode(crop, 60, method=method, threads=1)
        (OUT / f"golden_{method}.lmc").write_bytes(data)
        dec = lmcodec.decode(data, threads=1)
        info[method] = {"model_id": lmcodec.info(data).model_id, "quality": 60, "bytes": len(data),
                        "decoded_sha256": hashlib.sha256(dec.tobytes()).hexdigest()}
    (OUT / "golden.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
