"""Tests of lmcodec.bench on tiny synthetic images (JPEG + WebP through Pillow)."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image, features  # noqa: E402


def _load_bench():
    try:
        import lmcodec  # noqa: F401  (needs lmcodec._core)
    except ImportError:  # no built core: the bench folder of this checkout on its own
        path = Path(__file__).resolve().parents[1] / "python" / "lmcodec" / "bench"
        spec = importlib.util.spec_from_file_location("_lmcodec_bench_under_test", path / "__init__.py",
                                                      submodule_search_locations=[str(path)])
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod
    import lmcodec.bench as b  # the installed subpackage (a wheel without the folder fails here)

    return b


bench = _load_bench()

needs_webp = pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP")
REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "kodak_published_rd.json"


def _synthetic(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 90 * np.sin(xx / 7.0 + seed), 100 + 0.8 * yy + 0.3 * xx,
                    128 + 60 * np.cos((xx - yy) / 9.0)], axis=-1)
    img += rng.normal(0, 8, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images():
    return [("a.png", _synthetic(48, 64, 1)), ("b.png", _synthetic(56, 40, 2))]


@pytest.fixture(scope="module")
def result(images):
    return bench.run_bench(images, ["jpeg", "webp"], {"jpeg": [20, 50, 80], "webp": [20, 50, 80]},
                           progress=False)


@needs_webp
def test_run_bench_points_and_rows(result, images):
    assert result["codecs"]["jpeg"]["status"] == "ok"
    assert result["codecs"]["webp"]["status"] == "ok"
    assert not result["errors"]
    assert len(result["rows"]) == 2 * 3 * 2
    for codec in ("jpeg", "webp"):
        pts = result["points"][codec]
        assert [p["quality"] for p in sorted(pts, key=lambda p: p["quality"])] == [20, 50, 80]
        bpps = [p["bpp"] for p in pts]
        assert bpps == sorted(bpps) and bpps[0] > 0
        for p in pts:
            assert p["n_images"] == 2 and p["complete"]
            assert 10 < p["psnr"] < 60
            assert 0 < p["msssim"] <= 1
            assert p["ratio"] == pytest.approx(
                np.mean([r["ratio"] for r in result["rows"]
                         if r["codec"] == codec and r["quality"] == p["quality"]]))
            assert p["encode_ms"] >= 0 and p["decode_ms"] >= 0
        # higher quality -> higher PSNR for JPEG/WebP on these images
        by_q = sorted(pts, key=lambda p: p["quality"])
        assert by_q[0]["psnr"] < by_q[-1]["psnr"]


@needs_webp
def test_rows_use_real_file_sizes(result, images):
    img = dict(images)["a.png"]
    row = next(r for r in result["rows"]
               if r["codec"] == "jpeg" and r["quality"] == 50 and r["image"] == "a.png")
    data = bench.CODECS["jpeg"].encode(img, 50, None)
    assert row["bytes"] == len(data)
    assert row["bpp"] == pytest.approx(len(data) * 8 / (48 * 64))
    assert row["msssim_scales"] == 3  # 40..64 px images: reduced MS-SSIM scales


@needs_webp
def test_bd_tables(result):
    bd = result["bd"]
    assert bd["anchors"] == ["jpeg", "webp"]
    assert bd["rate_psnr"]["jpeg"]["jpeg"] == pytest.approx(0.0, abs=1e-9)
    assert bd["rate_msssim"]["webp"]["webp"] == pytest.approx(0.0, abs=1e-9)
    v = bd["rate_psnr"]["jpeg"]["webp"]
    w = bd["rate_psnr"]["webp"]["jpeg"]
    if not (math.isnan(v) or math.isnan(w)):
        # swapping the curves inverts the rate ratio only approximately, but the sign flips
        assert (v < 0) == (w > 0)


@needs_webp
def test_json_and_report_written(result, tmp_path):
    j = bench.write_json(result, tmp_path / "out" / "rd.json")
    data = json.loads(j.read_text())  # strict JSON (no NaN/Infinity)
    assert data["format"] == "lmcodec-bench/1"
    assert len(data["rows"]) == 12
    assert set(data["points"]) == {"jpeg", "webp"}
    rep = bench.write_report(result, tmp_path / "report.md")
    text = rep.read_text()
    for needle in ("BD-rate (PSNR)", "BD-rate (MS-SSIM)", "jpeg", "webp", "Pillow",
                   "subsampling=2", "MS-SSIM", "encode ms"):
        assert needle in text, needle


@needs_webp
def test_plot_written(result, tmp_path):
    pytest.importorskip("matplotlib")
    ref = {"curves": [{"name": "published", "bpp": [0.2, 0.5, 1.0, 2.0],
                       "psnr": [28, 31, 34, 37], "msssim": [0.93, 0.96, 0.98, 0.99]}]}
    out = bench.plot_rd(result, tmp_path / "rd.png", reference=ref)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failing_and_missing_codecs_are_reported_not_fatal(images, monkeypatch):
    def boom(rgb, q, threads=None):
        raise RuntimeError("codec under construction")

    fake = bench.Codec("broken", "broken codec", "raises", boom, bench.CODECS["jpeg"].decode)
    monkeypatch.setitem(bench.CODECS, "broken", fake)
    monkeypatch.setitem(bench.DEFAULT_QUALITIES, "broken", [50])
    res = bench.run_bench(images[:1], ["jpeg", "broken", "lmc"],
                          {"jpeg": [50], "broken": [50], "lmc": [50]}, progress=False)
    assert res["codecs"]["jpeg"]["status"] == "ok"
    assert res["codecs"]["broken"]["status"] == "failed"
    assert "under construction" in res["codecs"]["broken"]["note"]
    assert res["codecs"]["lmc"]["status"] in ("ok", "skipped", "failed")
    assert "broken" not in res["points"]
    text = bench.report_markdown(res)
    assert "broken: failed" in text


def test_lmc_plain_is_the_rdo_ablation(images):
    lmcodec = pytest.importorskip("lmcodec")
    res = bench.run_bench(images[:1], ["lmc", "lmc-plain"], {"lmc": [50], "lmc-plain": [50]}, progress=False)
    if res["codecs"]["lmc"]["status"] != "ok":
        pytest.skip("lmcodec core not built")
    assert res["codecs"]["lmc-plain"]["status"] == "ok"
    name, img = images[0]
    row = next(r for r in res["rows"] if r["codec"] == "lmc-plain")
    assert row["bytes"] == len(lmcodec.encode(img, 50, rdo=False))
    assert row["bytes"] != next(r for r in res["rows"] if r["codec"] == "lmc")["bytes"]


def test_unknown_codec_and_bad_images_raise(images):
    with pytest.raises(ValueError, match="unknown codec"):
        bench.run_bench(images, ["nope"], progress=False)
    with pytest.raises(ValueError):
        bench.run_bench([("g", np.zeros((8, 8), np.uint8))], ["jpeg"], progress=False)


def test_load_images(tmp_path):
    a = _synthetic(20, 30, 3)
    Image.fromarray(a).save(tmp_path / "1.png")
    Image.fromarray(a).save(tmp_path / "2.ppm")
    Image.fromarray(a).convert("L").save(tmp_path / "3.png")
    Image.fromarray(a).convert("RGBA").save(tmp_path / "4.png")
    Image.fromarray(a).save(tmp_path / "5.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("not an image")
    imgs = bench.load_images(tmp_path)
    assert [n for n, _ in imgs] == ["1.png", "2.ppm", "3.png", "4.png", "5.jpg"]
    for _, arr in imgs:
        assert arr.shape == (20, 30, 3) and arr.dtype == np.uint8
    assert np.array_equal(imgs[1][1], a)
    assert len(bench.load_images(tmp_path, limit=2)) == 2
    assert len(bench.load_images(tmp_path / "1.png")) == 1
    with pytest.raises(FileNotFoundError):
        bench.load_images(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no PNG"):
        bench.load_images(empty)


def test_reference_curves(result, tmp_path):
    ref = {"curves": [{"name": "pub", "bpp": [0.5, 1.0, 2.0, 4.0], "psnr": [25, 30, 35, 40]}]}
    p = tmp_path / "ref.json"
    p.write_text(json.dumps(ref))
    assert bench.load_reference(p)["curves"][0]["name"] == "pub"
    bd = bench.bd_tables(result["points"], reference=ref)
    assert "pub" in bd["published"]["rate_psnr"]["jpeg"]
    assert set(bd["vs_published"]["pub"]) == set(result["points"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"curves": [{"name": "x", "bpp": [1, 2], "psnr": [3]}]}))
    with pytest.raises(ValueError):
        bench.load_reference(bad)
    if REFERENCE.is_file():
        assert bench.load_reference(REFERENCE)["curves"]


@needs_webp
def test_main_bench_cli(tmp_path, capsys):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(_synthetic(40, 48, 5)).save(d / "x.png")
    Image.fromarray(_synthetic(32, 40, 6)).save(d / "y.png")
    out = tmp_path / "o"
    rc = bench.main_bench([str(d), "--codecs", "jpeg,webp", "--qualities", "30,70",
                           "--json", str(out / "r.json"), "--report", str(out / "r.md"),
                           "--limit", "1", "-q"])
    assert rc == 0
    data = json.loads((out / "r.json").read_text())
    assert len(data["images"]) == 1
    assert {p["quality"] for p in data["points"]["jpeg"]} == {30, 70}
    assert (out / "r.md").is_file()
    assert "BD-rate" in capsys.readouterr().out

    rc = bench.main_bench([str(d), "--codecs", "jpeg", "--qualities", "jpeg:10,20,40", "-q",
                           "--json", str(out / "s.json")])
    assert rc == 0
    data = json.loads((out / "s.json").read_text())
    assert [p["quality"] for p in data["points"]["jpeg"]] == [10, 20, 40]


def test_main_bench_errors(tmp_path, capsys):
    assert bench.main_bench([str(tmp_path / "nothing"), "-q"]) == 2
    assert "error" in capsys.readouterr().err
    assert bench.main_bench([str(tmp_path), "--codecs", "foo", "-q"]) == 2


def test_kernel_paths_benchmark_times_every_simd_path_and_checks_the_bits(tmp_path):
    """benchmarks/kernel_paths.py (the AVX-512 vs AVX2 benchmark): one small image,
    every SIMD path, the same bits on each (it exits 1 otherwise)."""
    import subprocess

    import lmcodec

    root = Path(__file__).resolve().parents[1]
    img = tmp_path / "a.png"
    Image.fromarray(np.asarray(Image.open(root / "python" / "lmcodec" / "data" / "sample.png").convert("RGB"))[:64, :96]).save(img)
    out = tmp_path / "p.json"
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "kernel_paths.py"), str(img), "--repeat", "1",
                        "--threads", "1,2", "--no-scalar", "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    simd = [p for p in lmcodec.kernel_paths() if p != "scalar"]
    assert res["paths"] == simd and res["identical_bits"] is True
    for p in simd:
        for k in ("encode 1T", "decode 1T", "encode 2T", "decode 2T"):
            assert res["median_ms"][f"{p} {k}"] > 0
    assert len(res["speedups"]) == 4 * (len(simd) - 1)
