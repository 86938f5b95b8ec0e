"""Peak memory and time of encoding and decoding large images.

    python benchmarks/memory.py [--sizes 4097x3001,6000x4000] [--threads 2] [--quality 50]
                                [--method hyperprior]

Each measurement runs in a fresh Python process (Linux: it reads
/proc/self/status), which builds the input image and loads the model, resets
its peak-RSS mark (/proc/self/clear_refs) and runs the one call under test;
"peak+" is the peak resident set during the call minus the resident set
before it, i.e. the memory the call needed, output buffer included. For scale it prints what the whole-image activations
of the widest layer would take (64 channels at half resolution, float32):
strip processing keeps the codec far below that.

The test suite runs a small version of this (tests/test_robustness.py); this
script gives the figures quoted in the README.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

# Reads a field of /proc/self/status in bytes (VmRSS, VmHWM); shared with
# benchmarks/large_images.py's child processes.
PROC_STATUS = textwrap.dedent(
    """
    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        return -1
    """
)

CHILD = PROC_STATUS + textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import lmcodec

    w, h, op, threads, q, method = sys.argv[1:7]
    w, h, threads, q = int(w), int(h), int(threads), float(q)
    img = np.empty((h, w, 3), np.uint8)
    xx = np.arange(w, dtype=np.float32)
    rng = np.random.default_rng(0)
    for y0 in range(0, h, 256):
        yy = np.arange(y0, min(h, y0 + 256), dtype=np.float32)[:, None]
        for c in range(3):
            v = 127 + 60 * np.sin(xx / 37.0 + c) + 50 * np.cos(yy / 23.0 - c)
            img[y0:y0 + 256, :, c] = (v + rng.normal(0, 6, v.shape)).clip(0, 255)
    lmcodec.set_limits(max_pixels=max(w * h, 1))
    small = lmcodec.encode(img[:16, :16], q, threads=threads, method=method)  # loads the model
    lmcodec.decode(small, threads=threads)
    data = lmcodec.encode(img, q, threads=threads, method=method) if op == "decode" else None
    base = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM (peak RSS) to the current RSS
        f.write("5")
    t0 = time.perf_counter()
    if op == "encode":
        out = lmcodec.encode(img, q, threads=threads, method=method)
        ok, nbytes = len(out) > 0, len(out)
    else:
        out = lmcodec.decode(data, threads=threads)
        ok = out.shape == img.shape and float(np.abs(out.astype(np.int16) - img).mean()) < 40
        nbytes = len(data)
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "rss_before": base, "peak": status("VmHWM"), "ok": bool(ok), "bytes": nbytes}))
    """
)


def measure(w: int, h: int, op: str, threads: int, quality: float, method: str) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(w), str(h), op, str(threads), str(quality), method],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{op} {w}x{h} failed:\n{r.stderr[-2000:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["extra_peak"] = max(0, res["peak"] - res["rss_before"])
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4097x3001,6000x4000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quality", type=float, default=50)
    ap.add_argument("--method", default="hyperprior")
    args = ap.parse_args(argv)
    print(f"{'size':>11} {'MP':>5} {'op':>6} {'seconds':>8} {'peak+ MiB':>10} {'img MiB':>8} {'whole-image act. MiB':>21}")
    for spec in args.sizes.split(","):
        w, h = (int(v) for v in spec.lower().split("x"))
        for op in ("encode", "decode"):
            r = measure(w, h, op, args.threads, args.quality, args.method)
            if not r["ok"]:
                print(f"{spec}: {op} gave a wrong result", file=sys.stderr)
                return 1
            act = 64 * ((h + 1) // 2) * ((w + 1) // 2) * 4
            print(f"{spec:>11} {w * h / 1e6:5.1f} {op:>6} {r['seconds']:8.2f} {r['extra_peak'] / 2**20:10.0f} "
                  f"{w * h * 3 / 2**20:8.0f} {act / 2**20:21.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
