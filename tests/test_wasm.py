"""The WebAssembly decoder (web/, issue 25 item 3): its pixels equal the native decoder's, in Node and
in headless Chromium.

Needs web/dist/lmcodec.mjs (tools/build_wasm.sh; about a minute on 2 cores). When it is missing the
tests skip, unless LMCODEC_TEST_WASM_BUILD=1, which builds it first (opt-in: the build installs
emscripten with apt when missing). Node >= 18 is needed for the Node tests, Debian's `chromium` for the
browser ones; each skips with its reason when missing.

Streams: the shipped goldens (PCA, the current hyperprior model and an archived one) and small images
made here with lmcodec.encode (hyperprior RGB, PCA RGBA and gray). The models are the installed
lmcodec's (LMCODEC_MODEL_DIR for Node, served under /models/ to the browser), so both decoders use
the same weights.
"""
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import lmcodec
from conftest import DATA, ROOT
from lmcodec import _api

sys.path.insert(0, str(ROOT / "tools"))
from chromium_cdp import Cdp  # noqa: E402  (headless Chromium over a DevTools pipe)

WEB = ROOT / "web"
DIST = WEB / "dist"
MJS = DIST / "lmcodec.mjs"
GOLDEN = ["golden_pca.lmc", "golden_hyperprior.lmc", "golden_hyperprior-a14cd2ac725fb59b.lmc"]


def fnv1a(data: bytes) -> str:
    """FNV-1a 32 of the pixel bytes, as web/lmcodec.mjs's checksum() computes it."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def _node_ok():
    node = shutil.which("node")
    if not node:
        return None, "node is not installed"
    try:
        v = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        major = int(v.lstrip("v").split(".")[0])
    except Exception as e:  # pragma: no cover
        return None, f"node --version failed: {e}"
    if major < 18:
        return None, f"node {v} is older than 18"
    return node, ""


@pytest.fixture(scope="module")
def dist():
    if not MJS.exists() or not (DIST / "lmcodec_core.wasm").exists():
        if os.environ.get("LMCODEC_TEST_WASM_BUILD") != "1":
            pytest.skip("web/dist/lmcodec.mjs is missing: run tools/build_wasm.sh (or set LMCODEC_TEST_WASM_BUILD=1)")
        if not shutil.which("em++") and not shutil.which("apt-get"):
            pytest.skip("emscripten is not installed and apt-get is unavailable")
        r = subprocess.run(["bash", str(ROOT / "tools" / "build_wasm.sh")], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for name in ("lmcodec.mjs", "worker.mjs"):  # the JS changed since the build: no recompile needed
        if not (DIST / name).exists() or (WEB / name).read_bytes() != (DIST / name).read_bytes():
            shutil.copyfile(WEB / name, DIST / name)
    return DIST


def _image(h, w, c, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 4 + y) % 256, (y * 3) % 256, (x * y) % 256, (x + y * 2) % 256][:max(c, 1)], -1)
    img = np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
    return img[..., 0] if c == 1 else img


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    d = tmp_path_factory.mktemp("wasm_streams")
    out = {}
    for name in GOLDEN:
        out[name] = (DATA / name).read_bytes()
    out["hyper64_rgb.lmc"] = lmcodec.encode(_image(64, 64, 3, 1), 60)
    out["pca64_rgba.lmc"] = lmcodec.encode(_image(64, 48, 4, 2), 70, method="pca")
    out["pca64_gray.lmc"] = lmcodec.encode(_image(40, 64, 1, 3), 80, method="pca")
    for name, b in out.items():
        (d / name).write_bytes(b)
    return d, out


def _native(b: bytes) -> np.ndarray:
    return np.ascontiguousarray(lmcodec.decode(b))


NODE_SCRIPT = r"""
import { decode, checksum, setKernels } from %(mjs)s;
import fs from 'node:fs';
const [dir, outDir, ...names] = process.argv.slice(2);
const res = {};
for (const n of names) {
  const t0 = performance.now();
  try {
    // the best kernel path of the build (simd128 in a -msimd128 build), then the portable scalar one
    const kernels = await setKernels('auto');
    const r = await decode(fs.readFileSync(dir + '/' + n));
    const ms = performance.now() - t0;
    fs.writeFileSync(outDir + '/' + n + '.raw', r.pixels);
    await setKernels('scalar');
    const rs = await decode(fs.readFileSync(dir + '/' + n));
    await setKernels('auto');
    res[n] = { width: r.width, height: r.height, channels: r.channels, checksum: checksum(r.pixels),
               kernels, scalar_checksum: checksum(rs.pixels), ms };
  } catch (e) {
    res[n] = { error: String(e && e.message || e) };
  }
}
console.log(JSON.stringify(res));
"""

NODE_WORKER_SCRIPT = r"""
import { decodeInWorker, checksum } from %(mjs)s;
import fs from 'node:fs';
const [dir, ...names] = process.argv.slice(2);
const res = {};
for (const n of names) {
  try {
    const r = await decodeInWorker(fs.readFileSync(dir + '/' + n));
    res[n] = { width: r.width, height: r.height, channels: r.channels, checksum: checksum(r.pixels), thread: r.thread };
  } catch (e) {
    res[n] = { error: String(e && e.message || e) };
  }
}
try { await decodeInWorker(new Uint8Array([1, 2, 3])); res.garbage = 'decoded'; }
catch (e) { res.garbage = String(e.message); }
console.log(JSON.stringify(res));
"""


def _run_node(node, script_dir, stream_dir, names, extra_env=None):
    script = script_dir / "run.mjs"
    script.write_text(NODE_SCRIPT % {"mjs": json.dumps(MJS.as_uri())})
    env = dict(os.environ, LMCODEC_MODEL_DIR=str(_api.MODELS_DIR), **(extra_env or {}))
    r = subprocess.run([node, str(script), str(stream_dir), str(script_dir), *names], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_node_pixels_equal_native(dist, streams, tmp_path):
    node, why = _node_ok()
    if not node:
        pytest.skip(why)
    stream_dir, data = streams
    res = _run_node(node, tmp_path, stream_dir, list(data))
    for name, b in data.items():
        r = res[name]
        assert "error" not in r, (name, r)
        ref = _native(b)
        h, w = ref.shape[:2]
        c = 1 if ref.ndim == 2 else ref.shape[2]
        assert (r["width"], r["height"], r["channels"]) == (w, h, c), name
        got = np.frombuffer((tmp_path / (name + ".raw")).read_bytes(), np.uint8)
        assert got.size == ref.size, name
        diff = np.abs(got.astype(int) - ref.reshape(-1).astype(int))
        assert diff.max() == 0, f"{name}: {np.count_nonzero(diff)} samples differ, max {diff.max()}"
        assert r["checksum"] == fnv1a(ref.tobytes()), name
        # the same pixels on the portable scalar path of the same build; the build's best path is the
        # SIMD128 one unless it was built without SIMD (LMC_WASM_SIMD=0)
        assert r["scalar_checksum"] == r["checksum"], name
        assert r["kernels"] == "simd128" or os.environ.get("LMC_WASM_SIMD") == "0", r["kernels"]


def test_node_decode_in_worker(dist, streams, tmp_path):
    """decodeInWorker() (web/worker.mjs on a worker_threads worker): the native pixels, errors as Errors."""
    node, why = _node_ok()
    if not node:
        pytest.skip(why)
    stream_dir, data = streams
    names = ["golden_hyperprior.lmc", "pca64_rgba.lmc"]
    script = tmp_path / "worker.mjs"
    script.write_text(NODE_WORKER_SCRIPT % {"mjs": json.dumps(MJS.as_uri())})
    env = dict(os.environ, LMCODEC_MODEL_DIR=str(_api.MODELS_DIR))
    r = subprocess.run([node, str(script), str(stream_dir), *names], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for n in names:
        assert "error" not in res[n], res[n]
        assert res[n]["thread"] == "worker"
        assert res[n]["checksum"] == fnv1a(_native(data[n]).tobytes()), n
    assert res["garbage"].startswith("lmcodec:"), res["garbage"]


def test_wasm_kernels_unit():
    """tests/cpp/test_dsp.cc built with em++ -msimd128 and run in Node (tools/test_wasm_kernels.sh): every
    kernel of the simd128 table bit-identical to the scalar reference, FMA edge cases included. Needs
    emscripten; the first run compiles the core (~1-2 minutes on 2 cores), later runs reuse the objects."""
    node, why = _node_ok()
    if not node:
        pytest.skip(why)
    if not shutil.which("em++"):
        pytest.skip("emscripten (em++) is not installed")
    r = subprocess.run(["bash", str(ROOT / "tools" / "test_wasm_kernels.sh")], cwd=ROOT, capture_output=True,
                       text=True, timeout=1800)
    out = r.stdout + r.stderr[-3000:]
    assert r.returncode == 0, out[-5000:]
    assert "all checks passed" in r.stdout
    assert "kernel fma (simd128): 0 /" in r.stdout, r.stdout[-3000:]
    assert "every path == scalar bit for bit" in r.stdout and "x 2 paths" in r.stdout, r.stdout[-3000:]


def test_node_errors(dist, streams, tmp_path):
    node, why = _node_ok()
    if not node:
        pytest.skip(why)
    stream_dir, data = streams
    good = data["golden_pca.lmc"]
    (stream_dir / "truncated.lmc").write_bytes(good[: len(good) // 2])
    (stream_dir / "garbage.lmc").write_bytes(b"not an lmc stream at all" * 4)
    res = _run_node(node, tmp_path, stream_dir, ["truncated.lmc", "garbage.lmc"])
    for n in ("truncated.lmc", "garbage.lmc"):
        assert "error" in res[n] and res[n]["error"].startswith("lmcodec:"), res[n]
    # a stream of the archived model, decoded with the current weights named explicitly: a mismatch, not pixels
    script = tmp_path / "mismatch.mjs"
    script.write_text(
        "import { decode } from %s; import fs from 'node:fs';\n"
        "try { await decode(fs.readFileSync(%s), { model: %s }); console.log('decoded'); }\n"
        "catch (e) { console.log(e.message); }\n" % (
            json.dumps(MJS.as_uri()), json.dumps(str(DATA / "golden_hyperprior-a14cd2ac725fb59b.lmc")),
            json.dumps(str(_api.MODELS_DIR / "hyperprior.lmw"))))
    r = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=300)
    assert "model mismatch" in r.stdout, r.stdout + r.stderr


# ---- headless Chromium ---------------------------------------------------------------------------

def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    """web/ at /, the installed lmcodec's weights at /models/, the test's streams at /samples/."""

    samples: Path = Path(".")

    def translate_path(self, path):
        clean = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, base in (("/models/", Path(_api.MODELS_DIR)), ("/samples/", self.samples)):
            if clean.startswith(prefix):
                name = clean[len(prefix):]
                if "/" in name or name.startswith("."):
                    return str(base / "__missing__")
                return str(base / name)
        return super().translate_path(path)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(dist, streams):
    handler = type("H", (_Handler,), {"samples": streams[0]})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(WEB)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _chromium_title(url, tmp_path, timeout=300.0):
    """Opens url and polls document.title until the page writes its result ("lmc:..." / "lmc-error:...").
    Also returns the longest time one poll (a Runtime.evaluate on the page's main thread) took: a page
    whose main thread decodes cannot answer until the decode ends."""
    import time

    cdp = Cdp(_chromium(), tmp_path / "profile")
    try:
        cdp.open(url)
        t_end = time.monotonic() + timeout
        worst = 0.0
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            title = cdp.eval("document.title", timeout=timeout) or ""
            worst = max(worst, time.monotonic() - t0)
            if title.startswith("lmc:") or title.startswith("lmc-error:"):
                return title, worst
            time.sleep(0.05)
        raise AssertionError(f"no result from {url} in {timeout} s (title {title!r})")
    finally:
        cdp.close()


@pytest.mark.parametrize("page,name,thread", [("index.html", "golden_pca.lmc", "worker"),
                                              ("index.html", "hyper64_rgb.lmc", "worker"),
                                              ("index.html?worker=0&", "hyper64_rgb.lmc", "main"),
                                              ("element.html", "pca64_rgba.lmc", "worker")])
def test_chromium_page_matches_native(server, streams, tmp_path, page, name, thread):
    """The page decodes in a Web Worker (decodeInWorker; "worker" is what the worker itself reports) or, with
    ?worker=0, on its own thread; either way the native decoder's pixels."""
    if not _chromium():
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    sep = "" if page.endswith("&") else "?"
    title, _ = _chromium_title(f"{server}/{page}{sep}src=/samples/{name}&model=/models/", tmp_path)
    assert title.startswith("lmc:"), title
    _, checksum, shape, _ms, got_thread = title.split(":")
    assert got_thread == thread
    ref = _native(streams[1][name])
    h, w = ref.shape[:2]
    c = 1 if ref.ndim == 2 else ref.shape[2]
    assert shape == f"{w}x{h}x{c}"
    assert checksum == fnv1a(ref.tobytes())


def test_chromium_worker_keeps_page_responsive(server, streams, tmp_path):
    """While a 256x256 hyperprior stream decodes (about a second), the page's main thread keeps answering
    (DevTools evaluations return at once) when the decode runs in the Web Worker; decoded on the page's
    thread (?worker=0), the same evaluation waits for the decode: the measurement can tell them apart."""
    if not _chromium():
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    stream_dir, data = streams
    name = "hyper256_rgb.lmc"
    b = lmcodec.encode(_image(256, 256, 3, 4), 75)
    (stream_dir / name).write_bytes(b)
    want = fnv1a(_native(b).tobytes())
    res = {}
    for mode, query in (("worker", ""), ("main", "worker=0&")):
        title, worst = _chromium_title(f"{server}/index.html?{query}src=/samples/{name}&model=/models/",
                                       tmp_path / mode)
        _, checksum, shape, ms, thread = title.split(":")
        assert (checksum, shape, thread) == (want, "256x256x3", mode), title
        res[mode] = (float(ms) / 1000, worst)
    print("decode s, longest main-thread wait s:", res)
    (dec_w, worst_w), (dec_m, worst_m) = res["worker"], res["main"]
    assert dec_m > 0.3 and worst_m > 0.6 * dec_m, res  # blocked for (most of) the decode
    assert worst_w < 0.25 * dec_w and worst_w < 0.5 * worst_m, res
