"""Decode time of the WebAssembly decoder (web/) on Kodak, in Node and in headless Chromium, with the
portable scalar kernels and the WASM SIMD128 ones (src/cpp/dsp/conv_wasm.cc) side by side, plus the
native decoder for reference, all in one run.

    tools/build_wasm.sh      # web/dist (the SIMD128 build; its scalar path is selected at run time)
    python benchmarks/wasm_decode.py [--kodak ../shared/data/kodak] [--limit 24] [--quality 75]
                                     [--no-chromium] [--json out.json]

Streams: every image encoded by the native encoder (lmcodec.encode) at --quality (75, the encoder's
default). Each runtime decodes one small stream first (model fetch/load and wasm compilation are not
timed), then every image with each kernel path in turn (scalar, then simd128), one decode each, on one
thread; Chromium runs the decode on the page's main thread (the worker adds ~nothing but a copy) and
its times are performance.now() around decode(). Every decoded image's FNV-1a checksum is compared
with the native decoder's pixels (a mismatch fails the run). Prints per image and the median over the
images, in ms. The machine is shared and noisy: compare columns of one run.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

import lmcodec
from lmcodec import _api

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"
WEB = ROOT / "web"
DIST = WEB / "dist"
PATHS = ("scalar", "simd128")

# Runs in Node and (as a function body) in the page: decodes every stream with each kernel path.
BENCH_JS = r"""
async function bench(lmc, streams, paths) {
  const out = { kernels: await lmc.setKernels('auto'), images: [] };
  await lmc.decode(streams[0].warm);  // model load + compilation, not timed
  for (const s of streams) {
    const row = { name: s.name };
    for (const p of paths) {
      const used = await lmc.setKernels(p);
      if (used !== p) throw new Error(`kernel path ${p} is not in this build (got ${used})`);
      const t0 = performance.now();
      const r = await lmc.decode(s.bytes);
      row[p] = performance.now() - t0;
      row[p + '_checksum'] = lmc.checksum(r.pixels);
    }
    out.images.push(row);
  }
  await lmc.setKernels('auto');
  return out;
}
"""

NODE_MAIN = BENCH_JS + r"""
import * as lmc from %(mjs)s;
import fs from 'node:fs';
const [dir, warm, ...names] = process.argv.slice(2);
const streams = names.map((n) => ({ name: n, bytes: fs.readFileSync(dir + '/' + n) }));
streams[0].warm = fs.readFileSync(warm);
console.log(JSON.stringify(await bench(lmc, streams, %(paths)s)));
"""


def fnv1a(data: bytes) -> str:
    a = np.frombuffer(data, np.uint8)
    h = 0x811C9DC5
    for b in a.tobytes():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def run_node(tmp: Path, stream_dir: Path, names, warm: Path):
    node = shutil.which("node")
    script = tmp / "bench.mjs"
    script.write_text(NODE_MAIN % {"mjs": json.dumps((DIST / "lmcodec.mjs").as_uri()), "paths": json.dumps(PATHS)})
    env = dict(os.environ, LMCODEC_MODEL_DIR=str(_api.MODELS_DIR))
    r = subprocess.run([node, str(script), str(stream_dir), str(warm), *names], capture_output=True, text=True,
                       env=env)
    if r.returncode != 0:
        raise SystemExit("node failed:\n" + r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1]), subprocess.run(
        [node, "--version"], capture_output=True, text=True).stdout.strip()


class Handler(http.server.SimpleHTTPRequestHandler):
    roots: dict = {}

    def translate_path(self, path):
        clean = path.split("?", 1)[0]
        for prefix, base in self.roots.items():
            if clean.startswith(prefix):
                return str(Path(base) / clean[len(prefix):])
        return super().translate_path(path)

    def log_message(self, *args):
        pass


def run_chromium(tmp: Path, stream_dir: Path, names, warm: Path):
    sys.path.insert(0, str(ROOT / "tools"))
    from chromium_cdp import Cdp

    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if not exe:
        return None, "chromium not installed"
    h = type("H", (Handler,), {"roots": {"/models/": _api.MODELS_DIR, "/streams/": stream_dir}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(h, directory=str(WEB)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    cdp = Cdp(exe, tmp / "profile")
    try:
        cdp.open(base + "/element.html?src=/streams/" + warm.name + "&model=/models/")
        ver = cdp.call("Browser.getVersion", session=False).get("product", "chromium")
        expr = "(async () => {" + BENCH_JS + """
          const lmc = await import(%s + '/dist/lmcodec.mjs');
          const real = lmc.decode;
          const model = { model: %s + '/models/' };
          const L = { ...lmc, decode: (b) => real(b, model) };
          const get = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
          const names = %s;
          const streams = [];
          for (const n of names) streams.push({ name: n, bytes: await get('/streams/' + n) });
          streams[0].warm = await get('/streams/%s');
          return await bench(L, streams, %s);
        })()""" % (json.dumps(base), json.dumps(base), json.dumps(list(names)), warm.name, json.dumps(PATHS))
        res = cdp.eval(expr, timeout=24 * 3600, await_promise=True)
        return res, ver
    finally:
        cdp.close()
        httpd.shutdown()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default=str(KODAK))
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--quality", type=float, default=75)
    ap.add_argument("--no-chromium", action="store_true")
    ap.add_argument("--no-node", action="store_true")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args(argv)
    if not (DIST / "lmcodec.mjs").exists():
        raise SystemExit("web/dist is missing: run tools/build_wasm.sh first")
    files = sorted(Path(a.kodak).glob("kodim*.png"))[: a.limit]
    if not files:
        raise SystemExit(f"no kodim*.png in {a.kodak}")
    tmp = Path(tempfile.mkdtemp(prefix="wasm_bench_"))
    sdir = tmp / "streams"
    sdir.mkdir()
    names, native_sum, native_ms, native_scalar_ms = [], {}, {}, {}
    best_path = lmcodec.kernel_path()
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        b = lmcodec.encode(img, a.quality)
        n = f.stem + ".lmc"
        (sdir / n).write_bytes(b)
        names.append(n)
        lmcodec.decode(b, threads=1)
        t0 = time.perf_counter()
        px = np.ascontiguousarray(lmcodec.decode(b, threads=1))
        native_ms[n] = (time.perf_counter() - t0) * 1000
        native_sum[n] = fnv1a(px.tobytes())
        lmcodec.set_kernels("scalar")
        t0 = time.perf_counter()
        lmcodec.decode(b, threads=1)
        native_scalar_ms[n] = (time.perf_counter() - t0) * 1000
        lmcodec.set_kernels("auto")
        print(f"encoded {n}: {len(b)} bytes, {8 * len(b) / (img.shape[0] * img.shape[1]):.3f} bpp; native decode "
              f"{native_ms[n]:.0f} ms ({best_path}), {native_scalar_ms[n]:.0f} ms (scalar)", flush=True)
    warm = sdir / "warm_64.lmc"
    warm.write_bytes(lmcodec.encode(np.asarray(Image.open(files[0]).convert("RGB"))[:64, :64], a.quality))

    results = {"native": {"path": best_path, "ms": native_ms, "scalar_ms": native_scalar_ms}}
    runtimes = []
    if not a.no_node:
        print("node ...", flush=True)
        results["node"], results["node_version"] = run_node(tmp, sdir, names, warm)
        runtimes.append("node")
    if not a.no_chromium:
        print("chromium ...", flush=True)
        res, ver = run_chromium(tmp, sdir, names, warm)
        if res is not None:
            results["chromium"], results["chromium_version"] = res, ver
            runtimes.append("chromium")
    bad = []
    for rt in runtimes:
        for row in results[rt]["images"]:
            for p in PATHS:
                if row[p + "_checksum"] != native_sum[row["name"]]:
                    bad.append(f"{rt} {p} {row['name']}")

    cols = [("native " + best_path, lambda n: native_ms[n]), ("native scalar", lambda n: native_scalar_ms[n])]
    for rt in runtimes:
        by = {r["name"]: r for r in results[rt]["images"]}
        for p in PATHS:
            cols.append((f"{rt} {p}", lambda n, by=by, p=p: by[n][p]))
        cols.append((f"{rt} speed-up", lambda n, by=by: by[n]["scalar"] / by[n]["simd128"]))
    print(f"\ndecode ms, 1 thread, quality {a.quality:g}; node {results.get('node_version', '-')}, "
          f"{results.get('chromium_version', 'no chromium')}")
    print("| image | " + " | ".join(c for c, _ in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    fmt = lambda c, v: f"{v:.2f}x" if c.endswith("speed-up") else f"{v:.0f}"
    for n in names:
        print(f"| {n[:-4]} | " + " | ".join(fmt(c, f(n)) for c, f in cols) + " |")
    print(f"| **median of {len(names)}** | " + " | ".join(fmt(c, statistics.median(f(n) for n in names)) for c, f in cols)
          + " |")
    results["median_ms"] = {c: statistics.median(f(n) for n in names) for c, f in cols}
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)
    if bad:
        print("PIXELS DIFFER from the native decoder: " + ", ".join(bad))
        return 1
    print(f"all {len(names) * len(PATHS) * len(runtimes)} WebAssembly decodes equal the native pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
