"""Large photos: time, MP/s and whole-process peak memory of encoding and
decoding 1, 6 and 24 MP images, lmcodec beside Pillow's JPEG, WebP and AVIF.

    python benchmarks/large_images.py [--sizes 1224x816,3000x2000,6000x4000] [--threads 1,2]
                                      [--codecs lmc,jpeg,webp,avif] [--quality 40] [--json out.json]

The images are mosaics of Kodak photos (mirrored tiles, so the picture is
photographic everywhere, not a repeated texture). Every measurement runs in
a fresh Python process that reads its input from a file (the PNG for an
encode, the coded file for a decode) and reports:

* seconds of the one call and MP/s;
* peak RSS of the whole process (VmHWM: Python, numpy, the model, the input
  and the output included), which is what a server sizes its workers by;
* peak+ : the peak minus the resident size just before the call, i.e. what
  the call itself needed.

lmcodec runs at --quality; the Pillow codecs at qualities that give about
the same file size on the 1 MP image (JPEG 85, WebP 80, AVIF 60 by default:
the point is speed and memory, not RD). Per-pixel decode time against a
Kodak image (768 x 512) is printed for lmcodec, since it should scale
linearly. This machine is noisy: rerun, and compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import PROC_STATUS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"

CHILD = PROC_STATUS + r"""
import json, sys, time
codec, op, path, threads, q = sys.argv[1:6]
threads, q = int(threads), float(q)
import io
import numpy as np
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
if codec == "lmc":
    import lmcodec
    lmcodec.set_limits(max_pixels=None)
    lmcodec.decode(lmcodec.encode(np.zeros((16, 16, 3), np.uint8), q, threads=threads), threads=threads)  # loads the model
data = open(path, "rb").read()
if op == "encode":
    with Image.open(io.BytesIO(data)) as im:
        img = np.asarray(im.convert("RGB"))
    del data
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current RSS
    f.write("5")
t0 = time.perf_counter()
if codec == "lmc":
    out = lmcodec.encode(img, q, threads=threads) if op == "encode" else lmcodec.decode(data, threads=threads)
elif op == "encode":
    buf = io.BytesIO()
    kw = {"quality": int(q)}
    if codec == "webp":
        kw["method"] = 4
    if codec == "avif":
        kw["speed"] = 6
    Image.fromarray(img).save(buf, {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}[codec], **kw)
    out = buf.getvalue()
else:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        out = np.asarray(im)
dt = time.perf_counter() - t0
peak_call = status("VmHWM")
print(json.dumps({"seconds": dt, "base": base, "peak_call": peak_call,
                  "bytes": len(out) if isinstance(out, (bytes, bytearray)) else int(out.nbytes)}))
"""

PIL_QUALITY = {"jpeg": 85, "webp": 80, "avif": 60}
EXT = {"lmc": ".lmc", "jpeg": ".jpg", "webp": ".webp", "avif": ".avif"}


def mosaic(w: int, h: int) -> np.ndarray:
    tiles = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(KODAK.glob("kodim*.png"))]
    if not tiles:
        sys.exit(f"no Kodak images in {KODAK}")
    out = np.empty((h, w, 3), np.uint8)
    k = 0
    for y0 in range(0, h, 512):
        for x0 in range(0, w, 768):
            t = tiles[k % len(tiles)]
            if t.shape[0] > t.shape[1]:
                t = t.transpose(1, 0, 2)
            if (k // len(tiles)) % 2:
                t = t[:, ::-1]
            k += 1
            th, tw = min(512, h - y0), min(768, w - x0)
            out[y0:y0 + th, x0:x0 + tw] = t[:th, :tw]
    return out


def run_child(codec: str, op: str, path: Path, threads: int, q: float) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, codec, op, str(path), str(threads), str(q)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{codec} {op} {path.name} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1224x816,3000x2000,6000x4000")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--codecs", default="lmc,jpeg,webp,avif")
    ap.add_argument("--quality", type=float, default=40, help="lmcodec quality")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    import lmcodec

    codecs = [c for c in a.codecs.split(",") if c]
    rows = []
    print(f"{'size':>10} {'MP':>5} {'codec':>5} {'op':>6} {'thr':>3} {'seconds':>8} {'MP/s':>6} "
          f"{'peak MiB':>9} {'peak+ MiB':>9} {'file KiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        kodak_ms = None
        for spec in a.sizes.split(","):
            w, h = (int(v) for v in spec.lower().split("x"))
            img = mosaic(w, h)
            png = tmp / f"{spec}.png"
            Image.fromarray(img).save(png, compress_level=1)
            lmcodec.set_limits(max_pixels=None)
            for codec in codecs:
                q = a.quality if codec == "lmc" else PIL_QUALITY[codec]
                coded = tmp / f"{spec}{EXT[codec]}"
                for op in ("encode", "decode"):
                    for threads in [int(t) for t in a.threads.split(",")]:
                        if codec != "lmc" and threads != 1:
                            continue  # Pillow's codecs: as Pillow runs them
                        if op == "encode" and codec == "lmc" and not coded.exists():
                            coded.write_bytes(lmcodec.encode(img, q, threads=2))
                        if op == "encode" and codec != "lmc" and not coded.exists():
                            kw = {"quality": int(q), **({"method": 4} if codec == "webp" else {}),
                                  **({"speed": 6} if codec == "avif" else {})}
                            Image.fromarray(img).save(coded, {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}[codec], **kw)
                        r = run_child(codec, op, png if op == "encode" else coded, threads, q)
                        mp = w * h / 1e6
                        row = {"size": spec, "mp": mp, "codec": codec, "op": op, "threads": threads,
                               "seconds": r["seconds"], "mp_per_s": mp / r["seconds"],
                               "peak_mib": r["peak_call"] / 2**20,
                               "peak_plus_mib": max(0, r["peak_call"] - r["base"]) / 2**20,
                               "file_kib": coded.stat().st_size / 1024}
                        rows.append(row)
                        print(f"{spec:>10} {mp:5.1f} {codec:>5} {op:>6} {threads:3d} {row['seconds']:8.2f} "
                              f"{row['mp_per_s']:6.2f} {row['peak_mib']:9.0f} {row['peak_plus_mib']:9.0f} "
                              f"{row['file_kib']:9.0f}", flush=True)
        # per-pixel decode time against a Kodak image (same process kind)
        k = tmp / "kodim.lmc"
        k.write_bytes(lmcodec.encode(np.asarray(Image.open(KODAK / "kodim01.png").convert("RGB")), a.quality))
        for threads in [int(t) for t in a.threads.split(",")]:
            if "lmc" not in codecs:
                break
            kodak_ms = min(run_child("lmc", "decode", k, threads, a.quality)["seconds"] for _ in range(3))
            ref = kodak_ms / (768 * 512)
            for row in rows:
                if row["codec"] == "lmc" and row["op"] == "decode" and row["threads"] == threads:
                    row["per_pixel_vs_kodak"] = row["seconds"] / (row["mp"] * 1e6) / ref
                    print(f"lmcodec decode {row['size']} at {threads} thread(s): {row['per_pixel_vs_kodak']:.2f}x "
                          f"the per-pixel time of a Kodak image ({kodak_ms * 1e3:.0f} ms)")
    if a.json:
        Path(a.json).write_text(json.dumps({"quality": a.quality, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
