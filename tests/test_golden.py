"""Golden vectors (tests/data/): committed streams must decode to the
committed pixel hash, and the encoder must reproduce them byte for byte.
Regenerate with `python tools/make_golden.py` after changing the weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lmcodec

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = json.loads((DATA / "golden.json").read_text())


@pytest.mark.parametrize("method", sorted(k for k in GOLDEN if not GOLDEN[k].get("archived")))
def test_golden_vectors(method):
    g = GOLDEN[method]
    current = lmcodec.model_info(method)["model_id"]
    assert current == g["model_id"], "shipped weights changed: run `python tools/make_golden.py`"
    data = (DATA / f"golden_{method}.lmc").read_bytes()
    for threads in (1, 2):
        dec = lmcodec.decode(data, threads=threads)
        assert hashlib.sha256(dec.tobytes()).hexdigest() == g["decoded_sha256"]
    img = np.asarray(Image.open(DATA / "golden.png").convert("RGB"))
    assert lmcodec.encode(img, g["quality"], method=method, threads=1) == data


ARCHIVED = sorted(k for k in GOLDEN if GOLDEN[k].get("archived"))


@pytest.mark.parametrize("key", ARCHIVED)
def test_archived_golden_vectors_still_decode(key):
    """Streams of replaced weights decode through the archived weights
    (models/<method>-<id prefix>.lmw), to the same pixels as before."""
    g = GOLDEN[key]
    data = (DATA / f"golden_{key}.lmc").read_bytes()
    assert lmcodec.info(data).model_id == g["model_id"]
    for threads in (1, 2):
        dec = lmcodec.decode(data, threads=threads)
        assert hashlib.sha256(dec.tobytes()).hexdigest() == g["decoded_sha256"]
