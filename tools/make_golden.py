"""Regenerate the golden vectors in tests/data/ from the shipped weights.

    python tools/make_golden.py

Writes golden.png (a 72x104 crop of the packaged sample), the .lmc stream
the C++ encoder makes of it at quality 60 for each method, and golden.json
with the model ids and the SHA-256 of the decoded pixels. Run it whenever the
shipped weights change (tests/test_golden.py tells you when;
tools/ship_weights.py runs it). A method whose model changed keeps its old
vector as golden_<method>-<id prefix>.lmc (entry "<method>-<id prefix>"),
which must go on decoding through the archived weights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

import lmcodec
from lmcodec._api import archive_path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sample = np.asarray(Image.open(ROOT / "python" / "lmcodec" / "data" / "sample.png").convert("RGB"))
    crop = np.ascontiguousarray(sample[150:222, 200:304])
    Image.fromarray(crop).save(OUT / "golden.png")
    old = json.loads((OUT / "golden.json").read_text()) if (OUT / "golden.json").exists() else {}
    info = {k: v for k, v in old.items() if v.get("archived")}
    for method in ("hyperprior", "pca"):
        prev = old.get(method)
        current = lmcodec.model_info(method)["model_id"]
        if prev and prev["model_id"] != current and (OUT / f"golden_{method}.lmc").exists():
            key = archive_path(method, prev["model_id"]).stem
            (OUT / f"golden_{method}.lmc").rename(OUT / f"golden_{key}.lmc")
            info[key] = {**prev, "archived": True}
        data = lmcodec.encode(crop, 60, method=method, threads=1)
        (OUT / f"golden_{method}.lmc").write_bytes(data)
        dec = lmcodec.decode(data, threads=1)
        info[method] = {"model_id": lmcodec.info(data).model_id, "quality": 60, "bytes": len(data),
                        "decoded_sha256": hashlib.sha256(dec.tobytes()).hexdigest()}
    (OUT / "golden.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
