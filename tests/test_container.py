"""The .lmc container through lmcodec._core (docs/format.md)."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lmcodec
from lmcodec import _core

SIG = b"\x89LMC\r\n\x1a\n"
MODEL = bytes(range(16))


def make_header(**kw):
    h = dict(width=32, height=16, channels=3, bit_depth=8, codec=1, quality=75.5,
             model_id=MODEL, flags=0, tile_height=0)
    h.update(kw)
    return h


BASIC = [("SIDE", b"zz"), ("LATN", b"yyyy")]


def raw_chunk(ctype: bytes, data: bytes) -> bytes:
    head = ctype + struct.pack("<I", len(data))
    return head + data + struct.pack("<I", zlib.crc32(head + data))


def strip_strategy():
    return st.integers(0, 4)


@st.composite
def headers(draw):
    width = draw(st.integers(1, 65535))
    height = draw(st.integers(1, max(1, min(65535, (1 << 28) // width))))
    channels = draw(st.sampled_from([1, 3, 4]))
    alpha = channels == 4 and draw(st.booleans())
    tile = draw(st.one_of(st.just(0), st.integers(max(1, height // 8), height)))
    return dict(
        width=width, height=height, channels=channels, bit_depth=8,
        codec=draw(st.sampled_from([1, 2])),
        quality=draw(st.integers(100, 10000)) / 100,
        model_id=draw(st.binary(min_size=16, max_size=16)),
        flags=1 if alpha else 0,
        tile_height=tile,
    )


def n_strips(h):
    t = h["tile_height"]
    return 1 if t == 0 else -(-h["height"] // t)


@st.composite
def files(draw):
    """A valid (header, chunks) pair with random payloads and extra chunks."""
    h = draw(headers())
    blob = st.binary(max_size=64)
    with_side = h["codec"] == 1 or draw(st.booleans())
    body = []
    for _ in range(n_strips(h)):
        if with_side:
            body.append(("SIDE", draw(blob)))
        body.append(("LATN", draw(blob)))
    extras = []
    if h["flags"] & 1:
        extras.append(("ALPH", draw(blob)))
    for t in ("iccp", "exif", "xmpd"):
        if draw(st.booleans()):
            extras.append((t, draw(blob)))
    letters = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)
    unknown = st.tuples(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=1), letters).map("".join)
    unknown = unknown.filter(lambda t: t not in ("iccp", "exif", "xmpd"))
    extras += draw(st.lists(st.tuples(unknown, blob), max_size=3))
    # Insert the extras at random places (the strip order is kept).
    chunks = list(body)
    for e in extras:
        chunks.insert(draw(st.integers(0, len(chunks))), e)
    return h, chunks


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(files())
def test_round_trip(hc):
    h, chunks = hc
    data = _core.internal.container_write(h, chunks)
    assert _core.internal.container_sniff(data)
    got_h, got_chunks = _core.internal.container_read(data)
    assert got_chunks == [(t, bytes(d)) for t, d in chunks]
    expect = dict(h, version=(1, 0))
    assert got_h == expect
    assert _core.internal.container_header(data) == expect
    # Rewriting what was read reproduces the file exactly.
    assert _core.internal.container_write(got_h, got_chunks) == data


@FAST
@given(files(), st.data())
def test_truncation_and_bit_flips_raise(hc, rnd):
    h, chunks = hc
    data = _core.internal.container_write(h, chunks)
    for n in sorted(set(rnd.draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=20)))):
        with pytest.raises(lmcodec.LmcError, match="corrupt stream"):
            _core.internal.container_read(data[:n])
    for pos in rnd.draw(st.lists(st.integers(0, len(data) * 8 - 1), min_size=1, max_size=20)):
        bad = bytearray(data)
        bad[pos // 8] ^= 1 << (pos % 8)
        with pytest.raises(lmcodec.LmcError, match="corrupt stream"):
            _core.internal.container_read(bytes(bad))


def test_every_truncation_and_flip_small_file():
    data = _core.internal.container_write(make_header(), BASIC + [("teSt", b"x")])
    for n in range(len(data)):
        with pytest.raises(lmcodec.LmcError, match="corrupt stream"):
            _core.internal.container_read(data[:n])
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(lmcodec.LmcError, match="corrupt stream"):
                _core.internal.container_read(bad)  # bytearray accepted too


@FAST
@given(st.binary(max_size=200))
def test_garbage_never_crashes(tail):
    for blob in (tail, SIG + tail):
        with pytest.raises(lmcodec.LmcError):
            _core.internal.container_read(blob)
        try:
            _core.internal.container_header(blob)
        except lmcodec.LmcError:
            pass


def test_layout_by_hand():
    # The spec's example: signature, HEAD, SIDE, LATN, ENDC with little-endian fields.
    data = _core.internal.container_write(make_header(width=4, height=2, channels=1), BASIC)
    assert data[:8] == SIG
    head = data[8:8 + 12 + 40]
    assert head[:4] == b"HEAD" and struct.unpack("<I", head[4:8])[0] == 40
    assert head[8:24] == bytes([1, 0, 1, 8, 4, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0x7E, 0x1D])
    assert struct.unpack("<I", head[48:52])[0] == zlib.crc32(head[:48])
    assert data[-12:] == raw_chunk(b"ENDC", b"")
    rebuilt = SIG + head + raw_chunk(b"SIDE", b"zz") + raw_chunk(b"LATN", b"yyyy") + raw_chunk(b"ENDC", b"")
    assert rebuilt == data


def test_sniff():
    data = _core.internal.container_write(make_header(), BASIC)
    assert _core.internal.container_sniff(data[:8])
    assert _core.internal.container_sniff(memoryview(data))
    assert not _core.internal.container_sniff(data[:7])
    assert not _core.internal.container_sniff(b"\x89PNG\r\n\x1a\n")
    assert not _core.internal.container_sniff(b"")
    assert not _core.internal.container_sniff("not bytes")
    assert not _core.internal.container_sniff(data.replace(b"\r\n", b"\n", 1))


def test_header_only_reads_head():
    data = _core.internal.container_write(make_header(), BASIC)
    head_only = data[:8 + 52]
    assert _core.internal.container_header(head_only)["width"] == 32
    with pytest.raises(lmcodec.LmcError, match="ENDC"):
        _core.internal.container_read(head_only)


def test_limits():
    lim = _core.internal.default_limits()
    assert lim == dict(max_pixels=1 << 28, max_dimension=65535, max_chunk_bytes=1 << 30, max_chunks=1 << 20)
    data = _core.internal.container_write(make_header(width=100, height=100), BASIC)
    with pytest.raises(lmcodec.LmcError, match="limit exceeded.*max_pixels"):
        _core.internal.container_read(data, max_pixels=9999)
    with pytest.raises(lmcodec.LmcError, match="limit exceeded"):
        _core.internal.container_header(data, max_dimension=99)
    assert _core.internal.container_read(data, max_pixels=10000)[0]["width"] == 100
    with pytest.raises(lmcodec.LmcError, match="limit exceeded.*max_chunk_bytes"):
        _core.internal.container_read(data, max_chunk_bytes=3)
    assert _core.internal.container_read(data, max_chunk_bytes=40)[1] == BASIC
    with pytest.raises(lmcodec.LmcError, match="limit exceeded"):
        _core.internal.container_read(data, max_chunks=3)
    # The writer applies them too.
    with pytest.raises(lmcodec.LmcError, match="limit exceeded"):
        _core.internal.container_write(make_header(width=70000, height=1), BASIC)
    with pytest.raises(lmcodec.LmcError, match="limit exceeded"):
        _core.internal.container_write(make_header(), [("SIDE", b"z"), ("LATN", bytes(100))], max_chunk_bytes=99)
    # A 4e9 x 4e9 header with a valid CRC.
    body = bytearray(data[8 + 8:8 + 8 + 40])
    body[4:12] = struct.pack("<II", 4_000_000_000, 4_000_000_000)
    huge = SIG + raw_chunk(b"HEAD", bytes(body)) + data[8 + 52:]
    with pytest.raises(lmcodec.LmcError, match="limit exceeded"):
        _core.internal.container_read(huge)
    # A chunk length of 0xFFFFFFFF.
    bad = bytearray(data)
    bad[8 + 52 + 4:8 + 52 + 8] = b"\xff\xff\xff\xff"
    with pytest.raises(lmcodec.LmcError, match="corrupt stream.*truncated"):
        _core.internal.container_read(bytes(bad))
    with pytest.raises(lmcodec.LmcError):
        _core.internal.container_read(data, max_pixels=-1)


def test_unknown_chunks():
    h = make_header()
    data = _core.internal.container_write(h, [("abcd", b"1")] + BASIC + [("zZzZ", b"")])
    assert _core.internal.container_read(data)[1] == [("abcd", b"1")] + BASIC + [("zZzZ", b"")]
    # Unknown critical chunk, built by hand (the writer refuses it).
    crit = data[:-12] + raw_chunk(b"TILE", b"") + data[-12:]
    with pytest.raises(lmcodec.LmcError, match="unsupported.*TILE"):
        _core.internal.container_read(crit)
    with pytest.raises(lmcodec.LmcError, match="invalid argument"):
        _core.internal.container_write(h, BASIC + [("TILE", b"")])
    with pytest.raises(lmcodec.LmcError, match="invalid argument"):
        _core.internal.container_write(h, BASIC + [("ab1d", b"")])
    with pytest.raises(lmcodec.LmcError, match="invalid argument"):
        _core.internal.container_write(h, BASIC + [("toolong", b"")])


def test_versions():
    data = _core.internal.container_write(make_header(version=(7, 7)), BASIC)  # version is ignored
    assert _core.internal.container_header(data)["version"] == (1, 0)
    body = bytearray(data[16:56])
    body[0] = 2
    newer = SIG + raw_chunk(b"HEAD", bytes(body)) + data[60:]
    with pytest.raises(lmcodec.LmcError, match="unsupported.*newer"):
        _core.internal.container_header(newer)
    body[0], body[1] = 1, 3
    minor = SIG + raw_chunk(b"HEAD", bytes(body) + b"future") + data[60:]
    assert _core.internal.container_read(minor)[0]["version"] == (1, 3)


def test_model_id():
    data = _core.internal.container_write(make_header(), BASIC)
    assert _core.internal.container_read(data, expected_model_id=MODEL)[0]["model_id"] == MODEL
    other = bytes(16)
    with pytest.raises(lmcodec.LmcError, match="model mismatch.*" + MODEL.hex()):
        _core.internal.container_read(data, expected_model_id=other)
    with pytest.raises(lmcodec.LmcError, match="model mismatch"):
        _core.internal.container_header(data, expected_model_id=other)


@pytest.mark.parametrize("edit", [
    dict(width=0), dict(channels=2), dict(bit_depth=16), dict(codec=3), dict(quality=0.5),
    dict(quality=100.01), dict(quality=float("nan")), dict(model_id=b"short"), dict(flags=2),
    dict(flags=1), dict(tile_height=17), dict(width=-1), dict(width=2**32), dict(width=True),
    dict(bogus=1),
])
def test_writer_rejects_bad_headers(edit):
    with pytest.raises(lmcodec.LmcError, match="invalid argument"):
        _core.internal.container_write(make_header(**edit), BASIC)


def test_writer_rejects_bad_layouts():
    h = make_header()
    for chunks in ([("LATN", b"")], [("SIDE", b"")], BASIC + BASIC, [("LATN", b""), ("SIDE", b"")],
                   BASIC + [("ALPH", b"")], BASIC + [("iccp", b""), ("iccp", b"")], BASIC + [("HEAD", b"")]):
        with pytest.raises(lmcodec.LmcError, match="invalid argument"):
            _core.internal.container_write(h, chunks)
    with pytest.raises(lmcodec.LmcError):
        _core.internal.container_write(h, [("LATN",)])
    with pytest.raises(TypeError):
        _core.internal.container_write(h, [("SIDE", b""), ("LATN", 5)])
    missing = make_header()
    del missing["model_id"]
    with pytest.raises(lmcodec.LmcError, match="model_id"):
        _core.internal.container_write(missing, BASIC)
    # Fractional quality survives at 0.01 resolution; bytes types and bytearray data are accepted.
    data = _core.internal.container_write(make_header(quality=33.33), [(b"SIDE", bytearray(b"a")), (b"LATN", memoryview(b"b"))])
    assert _core.internal.container_header(data)["quality"] == 33.33
