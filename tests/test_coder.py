"""Tests of the rANS entropy coder through the Python binding (lmcodec._core)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmcodec import LmcError, _core

I32_MIN = -(2**31)
I32_MAX = 2**31 - 1
TOTAL = 1 << 16

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------- helpers ---


def check_cdf(cdf: np.ndarray, n: int) -> None:
    cdf = np.asarray(cdf, dtype=np.int64)
    assert cdf.shape == (n + 2,)
    assert cdf[0] == 0 and cdf[-1] == TOTAL
    assert np.all(np.diff(cdf) >= 1)


def make_tables(pmfs, offsets):
    """List of PMFs -> (cdfs (T, L) u32 padded, lengths, offsets)."""
    cdfs = [np.asarray(_core.internal.pmf_to_quantized_cdf(np.asarray(p, dtype=np.float64))) for p in pmfs]
    width = max(len(c) for c in cdfs) + 1
    mat = np.full((len(cdfs), width), 0xFFFFFFFF, dtype=np.uint32)  # junk padding
    for t, c in enumerate(cdfs):
        mat[t, : len(c)] = c
    lengths = np.array([len(c) for c in cdfs], dtype=np.int32)
    return mat, lengths, np.asarray(offsets, dtype=np.int32)


def random_tables(rng: np.random.Generator, count: int, max_n: int):
    pmfs, offsets = [], []
    for _ in range(count):
        n = int(rng.integers(1, max_n + 1))
        p = rng.random(n) ** rng.choice([1, 4])
        p /= p.sum()
        if rng.random() < 0.3:
            p *= 0.9  # leave mass for the escape symbol
        pmfs.append(p)
        offsets.append(int(rng.integers(-1000, 1000)) - n // 2)
    return make_tables(pmfs, offsets)


def sample_symbols(rng, tables, indexes, escape_rate=0.01):
    cdfs, lengths, offsets = tables
    out = np.empty(len(indexes), dtype=np.int64)
    u = rng.integers(0, TOTAL, len(indexes))
    for t in range(len(lengths)):
        sel = indexes == t
        k = np.searchsorted(cdfs[t, : lengths[t]].astype(np.int64), u[sel], side="right") - 1
        out[sel] = offsets[t] + np.minimum(k, lengths[t] - 3)
    esc = rng.random(len(indexes)) < escape_rate
    out[esc] = rng.integers(I32_MIN, I32_MAX, int(esc.sum()), endpoint=True)
    return out.astype(np.int32)


def roundtrip(symbols, indexes, tables) -> bytes:
    symbols = np.asarray(symbols, dtype=np.int32)
    indexes = np.asarray(indexes, dtype=np.int32)
    data = _core.internal.rans_encode(symbols, indexes, *tables)
    assert isinstance(data, bytes)
    back = _core.internal.rans_decode(data, indexes, *tables)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, symbols)
    return data


# ------------------------------------------------------------- CDF builder ---

pmf_values = st.one_of(
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(0.0),
)


@FAST
@given(st.lists(pmf_values, min_size=1, max_size=300))
def test_cdf_builder_any_floats(pmf):
    pmf = np.array(pmf, dtype=np.float64)
    cdf = _core.internal.pmf_to_quantized_cdf(pmf)
    check_cdf(cdf, len(pmf))
    np.testing.assert_array_equal(cdf, _core.internal.pmf_to_quantized_cdf(pmf))  # deterministic


@FAST
@given(st.integers(1, 2000), st.integers(0, 2**32 - 1), st.floats(0.1, 3.0))
def test_cdf_builder_proportional(n, seed, total):
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    p *= total / p.sum()
    cdf = np.asarray(_core.internal.pmf_to_quantized_cdf(p), dtype=np.int64)
    check_cdf(cdf, n)
    freq = np.diff(cdf)
    # Regular bins follow the (normalised) PMF; the escape gets the missing mass.
    expect = p / max(total, 1.0) * TOTAL
    assert np.all(np.abs(freq[:-1] - expect) <= 1 + 0.02 * expect + n / 64)
    missing = max(0.0, 1.0 - total) * TOTAL
    assert abs(freq[-1] - missing) <= 1 + 0.02 * missing + n / 64


def test_cdf_builder_edge_cases():
    check_cdf(_core.internal.pmf_to_quantized_cdf(np.array([1.0])), 1)
    assert _core.internal.pmf_to_quantized_cdf(np.array([1.0]))[1] == TOTAL - 1
    check_cdf(_core.internal.pmf_to_quantized_cdf(np.zeros(7)), 7)
    check_cdf(_core.internal.pmf_to_quantized_cdf(np.full(4, 1e308)), 4)
    check_cdf(_core.internal.pmf_to_quantized_cdf(np.array([np.nan, np.inf, -np.inf, -1.0, 0.5])), 5)
    n = (1 << 16) - 2  # the largest table: every symbol needs a count
    p = np.full(n, 0.5 / n)
    p[123] += 0.5
    check_cdf(_core.internal.pmf_to_quantized_cdf(p), n)
    for bad in (np.zeros(0), np.ones(n + 1), np.ones(1 << 16)):
        with pytest.raises(LmcError):
            _core.internal.pmf_to_quantized_cdf(bad)
    with pytest.raises(LmcError):
        _core.internal.pmf_to_quantized_cdf(np.ones((2, 2)))


def test_invalid_tables_rejected():
    tables = make_tables([[0.5, 0.5], [0.2, 0.8]], [0, -1])
    sym = np.zeros(4, dtype=np.int32)
    idx = np.array([0, 1, 0, 1], dtype=np.int32)
    data = roundtrip(sym, idx, tables)
    mutations = []
    cdfs, lengths, offsets = (a.copy() for a in tables)
    cdfs[0, 1] = 0
    mutations.append((cdfs, lengths, offsets))  # zero frequency
    cdfs, lengths, offsets = (a.copy() for a in tables)
    cdfs[1, lengths[1] - 1] = TOTAL - 1
    mutations.append((cdfs, lengths, offsets))  # wrong total
    cdfs, lengths, offsets = (a.copy() for a in tables)
    lengths[0] = 2
    mutations.append((cdfs, lengths, offsets))  # too short
    cdfs, lengths, offsets = (a.copy() for a in tables)
    lengths[0] = cdfs.shape[1] + 1
    mutations.append((cdfs, lengths, offsets))  # longer than the row
    for bad in mutations:
        with pytest.raises(LmcError):
            _core.internal.rans_encode(sym, idx, *bad)
        with pytest.raises(LmcError):
            _core.internal.rans_decode(data, idx, *bad)


# -------------------------------------------------------------- round trips ---


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, 30),
    max_n=st.sampled_from([1, 3, 16, 300]),
    length=st.one_of(st.integers(0, 50), st.integers(0, 3000), st.sampled_from([0, 1, 2, 3, 100_000])),
    escape_rate=st.sampled_from([0.0, 0.01, 0.5]),
)
def test_roundtrip_random(seed, count, max_n, length, escape_rate):
    rng = np.random.default_rng(seed)
    tables = random_tables(rng, count, max_n)
    idx = rng.integers(0, count, length).astype(np.int32)
    sym = sample_symbols(rng, tables, idx, escape_rate)
    data = roundtrip(sym, idx, tables)
    assert (len(data) == 0) == (length == 0)


@FAST
@given(
    st.lists(st.integers(I32_MIN, I32_MAX), min_size=1, max_size=200),
    st.sampled_from([I32_MIN, I32_MIN + 1, -5, 0, I32_MAX - 3, I32_MAX]),
    st.integers(1, 40),
)
def test_roundtrip_any_int32(values, offset, n):
    tables = make_tables([np.full(n, 1.0 / (n + 1))], [offset])
    roundtrip(values, np.zeros(len(values)), tables)


def test_extreme_values():
    ext = [I32_MIN, I32_MIN + 1, -I32_MAX, I32_MAX, I32_MAX - 1, 0, -1, 1, 1 << 30, -(1 << 30)]
    for offset in (I32_MIN, -3, 0, I32_MAX - 1, I32_MAX):
        for n in (1, 2, 200):
            tables = make_tables([np.full(n, 0.9 / n)], [offset])
            vals = ext + [v for v in range(offset, offset + min(n, 5)) if v <= I32_MAX]
            roundtrip(vals, np.zeros(len(vals)), tables)
            roundtrip(vals[::-1], np.zeros(len(vals)), tables)
            for v in vals:
                roundtrip([v], [0], tables)


def test_one_symbol_tables():
    tables = make_tables([[1.0], [1.0], [0.3]], [0, -7, 99])
    rng = np.random.default_rng(1)
    for length in (1, 2, 5, 100_000):
        idx = rng.integers(0, 3, length).astype(np.int32)
        sym = tables[2][idx].copy()
        data = roundtrip(sym, idx, tables)
        if length == 100_000:
            # table 2's certain symbol costs 16 - log2(65535 * 0.3) bits; others ~0.
            assert len(data) < 100_000 * 2 / 8 * 1.01


def test_empty_input():
    tables = make_tables([[0.5, 0.5]], [0])
    none = np.zeros(0, dtype=np.int32)
    data = _core.internal.rans_encode(none, none, *tables)
    assert data == b""
    assert _core.internal.rans_decode(b"", none, *tables).shape == (0,)
    with pytest.raises(LmcError):
        _core.internal.rans_decode(b"\x00", none, *tables)  # trailing data
    with pytest.raises(LmcError):
        _core.internal.rans_decode(b"", np.zeros(3, dtype=np.int32), *tables)  # n > 0, no data


def test_compression_close_to_model():
    rng = np.random.default_rng(5)
    tables = random_tables(rng, 8, 64)
    idx = rng.integers(0, 8, 200_000).astype(np.int32)
    sym = sample_symbols(rng, tables, idx, escape_rate=0.0)
    data = roundtrip(sym, idx, tables)
    cdfs, lengths, offsets = tables
    k = sym.astype(np.int64) - offsets[idx]
    freq = cdfs[idx, k + 1].astype(np.int64) - cdfs[idx, k]
    ideal = float(np.sum(16 - np.log2(freq)))
    assert 8 * len(data) <= ideal * 1.001 + 128


# ------------------------------------------------------------- bad inputs ---


def test_bad_indexes():
    tables = make_tables([[0.5, 0.5], [0.25] * 4], [0, 0])
    sym = np.zeros(10, dtype=np.int32)
    idx = np.ones(10, dtype=np.int32)
    data = roundtrip(sym, idx, tables)
    for bad in (2, 3, -1, I32_MIN, I32_MAX):
        b = idx.copy()
        b[7] = bad
        with pytest.raises(LmcError, match="invalid argument"):
            _core.internal.rans_encode(sym, b, *tables)
        with pytest.raises(LmcError, match="invalid argument"):
            _core.internal.rans_decode(data, b, *tables)
    with pytest.raises(LmcError):
        _core.internal.rans_encode(sym, idx[:5], *tables)  # length mismatch


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 400))
def test_truncated_and_trailing(seed, length):
    rng = np.random.default_rng(seed)
    tables = random_tables(rng, 5, 50)
    idx = rng.integers(0, 5, length).astype(np.int32)
    sym = sample_symbols(rng, tables, idx, 0.05)
    data = roundtrip(sym, idx, tables)
    for cut in sorted({0, 1, 7, 8, len(data) // 2, len(data) - 4, len(data) - 1}):
        if 0 <= cut < len(data):
            with pytest.raises(LmcError, match="corrupt stream"):
                _core.internal.rans_decode(data[:cut], idx, *tables)
    for extra in (b"\x00", b"\x00" * 4, bytes(rng.integers(0, 256, 9, dtype=np.uint8))):
        with pytest.raises(LmcError, match="corrupt stream"):
            _core.internal.rans_decode(data + extra, idx, *tables)
    with pytest.raises(LmcError, match="corrupt stream"):
        _core.internal.rans_decode(data, np.concatenate([idx, [0]]).astype(np.int32), *tables)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 300), st.integers(0, 2**32 - 1))
def test_garbage_never_crashes(data, length, seed):
    rng = np.random.default_rng(seed)
    tables = random_tables(rng, 4, 30)
    idx = rng.integers(0, 4, length).astype(np.int32)
    try:
        out = _core.internal.rans_decode(data, idx, *tables)
    except LmcError as e:
        assert "corrupt stream" in str(e)
    else:
        assert out.shape == (length,)


def test_bit_flips_detected_or_different():
    rng = np.random.default_rng(11)
    tables = random_tables(rng, 6, 100)
    idx = rng.integers(0, 6, 3000).astype(np.int32)
    sym = sample_symbols(rng, tables, idx, 0.01)
    data = roundtrip(sym, idx, tables)
    detected = 0
    positions = range(0, len(data), max(1, len(data) // 150))
    for pos in positions:
        b = bytearray(data)
        b[pos] ^= 1 << (pos % 8)
        try:
            out = _core.internal.rans_decode(bytes(b), idx, *tables)
        except LmcError:
            detected += 1
        else:  # a valid encoding of some other sequence, never the original
            assert not np.array_equal(out, sym)
    assert detected > len(positions) // 2


def test_info_cost_matches_entropy_for_gaussian():
    """A discretised Gaussian table codes within a fraction of a percent of its entropy."""
    s = 3.0
    h = math.ceil(8 * s)
    xs = np.arange(-h, h + 1)
    cdf_f = np.array([0.5 * math.erfc(-(x + 0.5) / (s * math.sqrt(2))) for x in xs])
    cdf_b = np.array([0.5 * math.erfc(-(x - 0.5) / (s * math.sqrt(2))) for x in xs])
    pmf = cdf_f - cdf_b
    tables = make_tables([pmf], [-h])
    rng = np.random.default_rng(3)
    sym = np.clip(np.rint(rng.normal(0, s, 200_000)), -h, h).astype(np.int32)
    data = roundtrip(sym, np.zeros(len(sym)), tables)
    p = pmf[sym + h]
    ideal = float(-np.log2(p).sum())
    assert 8 * len(data) < ideal * 1.005
