"""Entropy-coder benchmark: rANS encode/decode speed and overhead vs. entropy.

    python benchmarks/bench_coder.py [--n 10000000] [--repeats 5]

Tables mimic the Gaussian-conditional scale table of a learned codec: 64
scales log-spaced in [0.11, 256], each a zero-centred discretised Gaussian on
[-h, h] with h = min(2047, ceil(8 * scale)) (as training/entropy_models.py
builds them). Symbols are drawn from the matching discretised Gaussians with
uniformly random table indexes. Everything runs on one core (single call).

Speeds are reported from wall time and from the calling thread's CPU time
(time.thread_time; the GIL is released but the work stays on that thread),
which is the steadier number on a shared machine.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from lmcodec import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # training.tables (torch-free)
from training.tables import NUM_SCALES, SCALE_MAX, SCALE_MIN, gaussian_pmfs, scale_table  # noqa: E402


def gaussian_tables(support_sigmas: float = 8.0, max_half: int = 2047):
    scales = scale_table()
    pmfs, offsets = gaussian_pmfs(support_sigmas, max_half)
    cdfs = [np.asarray(_core.internal.pmf_to_quantized_cdf(p)) for p in pmfs]
    width = max(len(c) for c in cdfs)
    mat = np.zeros((len(cdfs), width), dtype=np.uint32)
    for t, c in enumerate(cdfs):
        mat[t, : len(c)] = c
    lengths = np.array([len(c) for c in cdfs], dtype=np.int32)
    return scales, pmfs, (mat, lengths, offsets)


def timed(fn, repeats: int):
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.thread_time()
        result = fn()
        cpus.append(time.thread_time() - c0)
        walls.append(time.perf_counter() - w0)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000, help="symbols per call")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n = args.n

    scales, pmfs, tables = gaussian_tables()
    cdfs, lengths, offsets = tables
    rng = np.random.default_rng(args.seed)
    idx = rng.integers(0, NUM_SCALES, n).astype(np.int32)
    # round(N(0, s)) is exactly the discretised Gaussian the tables describe.
    sym = np.rint(rng.standard_normal(n) * scales[idx]).astype(np.int32)

    enc_wall, enc_cpu, data = timed(lambda: _core.internal.rans_encode(sym, idx, *tables), args.repeats)
    dec_wall, dec_cpu, back = timed(lambda: _core.internal.rans_decode(data, idx, *tables), args.repeats)
    if not np.array_equal(back, sym):
        raise SystemExit("round trip FAILED")

    # Ideal code lengths: under the true (float) PMFs, and under the quantized tables.
    k = sym.astype(np.int64) - offsets[idx]
    h = lengths[idx].astype(np.int64) - 2
    inside = (k >= 0) & (k < h)
    p_true = np.empty(n)
    for t in range(NUM_SCALES):
        sel = idx == t
        kt = np.clip(k[sel], 0, len(pmfs[t]) - 1)
        p_true[sel] = pmfs[t][kt]
    p_true[~inside] = 1e-300  # escapes (essentially never at 8 sigma)
    ideal_true = float(-np.log2(p_true).sum())
    kq = np.where(inside, k, h)  # escape symbol for the few outliers
    freq = cdfs[idx, kq + 1].astype(np.int64) - cdfs[idx, kq]
    ideal_quant = float((16 - np.log2(freq)).sum())
    coded = 8.0 * len(data)
    # Expected entropy of the source (mean over tables; indexes are uniform).
    h_src = float(np.mean([-(p[p > 0] * np.log2(p[p > 0])).sum() for p in pmfs]))

    print(f"lmcodec rANS benchmark: {n:,} symbols, {NUM_SCALES} Gaussian tables "
          f"(scales {SCALE_MIN}..{SCALE_MAX}), {int(lengths.max())} max CDF entries, {args.repeats} repeats (median)")
    print(f"  encode: {n / enc_wall / 1e6:7.1f} Msym/s wall   {n / enc_cpu / 1e6:7.1f} Msym/s cpu")
    print(f"  decode: {n / dec_wall / 1e6:7.1f} Msym/s wall   {n / dec_cpu / 1e6:7.1f} Msym/s cpu")
    print(f"  stream: {len(data):,} bytes, {coded / n:.5f} bits/symbol, {int((~inside).sum())} escapes")
    print(f"  ideal (true PMF, these samples):   {ideal_true / n:.5f} bits/symbol  "
          f"-> overhead {100 * (coded / ideal_true - 1):+.3f}%")
    print(f"  ideal (quantized 16-bit tables):    {ideal_quant / n:.5f} bits/symbol  "
          f"-> coder overhead {100 * (coded / ideal_quant - 1):+.4f}%")
    print(f"  source entropy (expected):          {h_src:.5f} bits/symbol")


if __name__ == "__main__":
    main()
