"""Two builds of lmcodec side by side: is a change faster, slower, the same bits?

    python benchmarks/ab_builds.py PYTHON_A PYTHON_B [--images 6] [--rounds 5] [--quality 32]
                                   [--threads 2] [--repeat 2] [--json out.json]

PYTHON_A and PYTHON_B are interpreters with the two builds installed (e.g. a
venv with the old commit: `git worktree add /tmp/old REV && python -m venv
--system-site-packages /tmp/venv-old && (cd /tmp/old && /tmp/venv-old/bin/pip
install --no-deps --no-build-isolation .)`). Each round runs A then B (then B
then A in the next round, so neither always runs second) in fresh processes;
each process times the encode and the decode of every image (best of
--repeat) at the given threads. Reported: per build the median over rounds
of the summed ms, and B/A as the median of per-round ratios (this machine is
noisy: alternating rounds put its slow and fast stretches on both builds
alike). It also checks that both builds wrote the same streams and decoded
the same pixels (digests), which a restructuring must keep.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"

# Run inside each build's interpreter: time encode and decode of the images.
WORKER = r"""
import hashlib, json, sys, time
import numpy as np
from PIL import Image
import lmcodec
paths, quality, threads, repeat = json.loads(sys.argv[1])
enc_ms = dec_ms = 0.0
h = hashlib.sha256()
for p in paths:
    img = np.asarray(Image.open(p).convert("RGB"))
    lmcodec.encode(img, quality, threads=threads)  # warm the model and the pools
    best_e = best_d = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter(); data = lmcodec.encode(img, quality, threads=threads); t1 = time.perf_counter()
        out = lmcodec.decode(data, threads=threads); t2 = time.perf_counter()
        best_e, best_d = min(best_e, t1 - t0), min(best_d, t2 - t1)
    enc_ms += best_e * 1e3
    dec_ms += best_d * 1e3
    h.update(hashlib.sha256(data).digest()); h.update(hashlib.sha256(out.tobytes()).digest())
print(json.dumps({"encode_ms": enc_ms, "decode_ms": dec_ms, "digest": h.hexdigest(),
                  "version": lmcodec.__version__, "kernels": lmcodec.kernel_path()}))
"""


def run(python: str, args: list) -> dict:
    r = subprocess.run([python, "-c", WORKER, json.dumps(args)], capture_output=True, text=True, cwd="/")
    if r.returncode != 0:
        sys.exit(f"{python} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("python_a")
    ap.add_argument("python_b")
    ap.add_argument("--kodak", default=str(KODAK))
    ap.add_argument("--images", type=int, default=6, help="the first N Kodak images")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quality", type=float, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    paths = [str(p) for p in sorted(Path(a.kodak).glob("kodim*.png"))[:a.images]]
    if not paths:
        sys.exit(f"no kodim*.png in {a.kodak}")
    args = [paths, a.quality, a.threads, a.repeat]
    rows = {"A": [], "B": []}
    for r in range(a.rounds):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        for k in order:
            rows[k].append(run(a.python_a if k == "A" else a.python_b, args))
        print(f"round {r + 1}/{a.rounds}: " + "  ".join(
            f"{k} enc {rows[k][-1]['encode_ms']:.0f} dec {rows[k][-1]['decode_ms']:.0f} ms" for k in "AB"), flush=True)
    same = {row["digest"] for row in rows["A"] + rows["B"]}
    result = {"images": len(paths), "quality": a.quality, "threads": a.threads, "rounds": a.rounds,
              "same_bits": len(same) == 1, "kernels": rows["A"][0]["kernels"]}
    print(f"\n{len(paths)} Kodak images, quality {a.quality}, {a.threads} threads, {a.rounds} alternating rounds, "
          f"kernels {result['kernels']}; ms summed over the images (best of {a.repeat} each), median over rounds")
    for what in ("encode_ms", "decode_ms"):
        ma = statistics.median(r[what] for r in rows["A"])
        mb = statistics.median(r[what] for r in rows["B"])
        ratio = statistics.median(b[what] / x[what] for x, b in zip(rows["A"], rows["B"]))
        result[what] = {"A": ma, "B": mb, "B_over_A": ratio}
        print(f"  {what[:-3]:7s} A {ma:8.1f}  B {mb:8.1f}  B/A {ratio:.3f} (median of per-round ratios)")
    print("  same streams and pixels in both builds: " + ("yes" if result["same_bits"] else "NO"))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
