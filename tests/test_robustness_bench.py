"""benchmarks/robustness.py: the conditions do what they say, and the benchmark runs end to end (2 images)."""

from __future__ import annotations


import numpy as np
from PIL import Image

from conftest import load_benchmark, natural

rb = load_benchmark("robustness")


def test_conditions():
    img = natural(128, 160, 3)
    assert rb.condition(img, "clean", 0) is img
    n = rb.condition(img, "noise5", 0).astype(float) - img
    assert 4.0 < n.std() < 5.5  # clipping trims a little
    assert not np.array_equal(rb.condition(img, "jpeg50", 0), img)
    b = rb.condition(img, "blocks10", 0)
    blank = (b == 0).all(axis=2) & (img != 0).any(axis=2)
    assert 0.02 < blank.mean() < 0.25 and np.array_equal(b[~blank], img[~blank])
    assert np.array_equal(rb.condition(img, "noise2", 7), rb.condition(img, "noise2", 7))  # seeded


def test_benchmark_runs_on_two_images(tmp_path):
    for k in range(2):
        Image.fromarray(natural(96, 96, 20 + k)).save(tmp_path / f"i{k}.png")
    out = tmp_path / "r.md"
    assert rb.main([str(tmp_path), "--conditions", "clean,noise5,blocks10", "--report", str(out),
                    "--json", str(tmp_path / "r.json")]) == 0
    text = out.read_text()
    assert "| clean |" in text and "| noise5 |" in text and "| blocks10 |" in text
    assert "lmc RDO vs plain" in text and "nan" not in text.split("Mean points")[0]
