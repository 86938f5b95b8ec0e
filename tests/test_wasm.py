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
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import lmcodec
from conftest import DATA, ROOT
from lmcodec import _api

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
    elif (WEB / "lmcodec.mjs").read_bytes() != MJS.read_bytes():
        shutil.copyfile(WEB / "lmcodec.mjs", MJS)  # the JS API changed since the build: no recompile needed
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
import { decode, checksum } from %(mjs)s;
import fs from 'node:fs';
const [dir, outDir, ...names] = process.argv.slice(2);
const res = {};
for (const n of names) {
  const t0 = performance.now();
  try {
    const r = await decode(fs.readFileSync(dir + '/' + n));
    fs.writeFileSync(outDir + '/' + n + '.raw', r.pixels);
    res[n] = { width: r.width, height: r.height, channels: r.channels, checksum: checksum(r.pixels),
               ms: performance.now() - t0 };
  } catch (e) {
    res[n] = { error: String(e && e.message || e) };
  }
}
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


def _chromium_title(url, tmp_path):
    exe = _chromium()
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=300000", "--dump-dom", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    m = re.search(r"<title>([^<]*)</title>", r.stdout)
    assert m, r.stdout[-2000:] + r.stderr[-2000:]
    return m.group(1)


@pytest.mark.parametrize("page,name", [("index.html", "golden_pca.lmc"), ("index.html", "hyper64_rgb.lmc"),
                                       ("element.html", "pca64_rgba.lmc")])
def test_chromium_page_matches_native(server, streams, tmp_path, page, name):
    if not _chromium():
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    title = _chromium_title(f"{server}/{page}?src=/samples/{name}&model=/models/", tmp_path)
    assert title.startswith("lmc:"), title
    _, checksum, shape, _ms = title.split(":")
    ref = _native(streams[1][name])
    h, w = ref.shape[:2]
    c = 1 if ref.ndim == 2 else ref.shape[2]
    assert shape == f"{w}x{h}x{c}"
    assert checksum == fnv1a(ref.tobytes())
