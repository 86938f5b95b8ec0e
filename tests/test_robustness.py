"""Robustness of the decoder against damaged, hostile and forged streams.

* mutation tests: every truncation and ~2000 seeded byte/bit mutations of
  valid streams (both codecs, gray/RGB/RGBA, made at test time) must end in
  LmcError -- never a crash, never a wrong image, never > 1 s;
* hypothesis fuzzing of decode / info / Pillow with arbitrary bytes and with
  structurally valid (CRC-correct) streams built from random fields/chunks;
* forged streams with valid CRCs (wrong size, channels, quality, codec,
  model id, oversized headers);
* regression inputs found by the fuzzers (tests/data/regressions/);
* memory: RSS stays flat over thousands of encode/decode/error cycles, and
  error messages stay per-thread under concurrency;
* the C++ unit tests under ASan+UBSan, and a short libFuzzer run (fuzz/).
"""

from __future__ import annotations

import gc
import importlib.util
import io
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lmcodec
from conftest import ROOT
from lmcodec import LmcError, _core

PIL = pytest.importorskip("PIL")
from PIL import Image, UnidentifiedImageError  # noqa: E402

REGRESSIONS = ROOT / "tests" / "data" / "regressions"
SIG = b"\x89LMC\r\n\x1a\n"
MAX_SECONDS = 1.0  # per decode / info / open of a damaged stream


# ------------------------------------------------------------------ helpers


def image(h: int, w: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [128 + 90 * np.sin(xx / (5 + 3 * c) + c) * np.cos(yy / (7 + c)) + rng.normal(0, 5, (h, w))
              for c in range(3)]
    rgb = np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)
    if channels == 1:
        return rgb[..., 0].copy()
    if channels == 4:
        alpha = ((xx * 7 + yy * 3) % 256).astype(np.uint8)  # not constant: the rANS alpha path
        return np.dstack([rgb, alpha])
    return rgb


# The chunk helpers are fuzz/forge.py's (one forger for the fuzzers and the tests).
import forge  # noqa: E402

split_chunks = forge.split
patch_head = forge.rewrite  # raw HEAD fields (any values, valid or not), CRCs fixed


def join_chunks(chunks) -> bytes:
    return forge.SIG + b"".join(forge.chunk(t, d) for t, d in chunks)


def model_id(method: str) -> bytes:
    return bytes.fromhex(lmcodec.model_info(method)["model_id"])


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    try:
        return fn(*args, **kw), None, time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 - classified by the caller
        return None, e, time.perf_counter() - t0


PIL_ERRORS = (UnidentifiedImageError, OSError, LmcError, SyntaxError)


def pil_open_load(data: bytes):
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size, im.mode


# (method, channels, h, w, quality)
STREAM_SPECS = [
    ("hyperprior", 3, 16, 24, 50),
    ("hyperprior", 1, 16, 16, 80),
    ("hyperprior", 4, 16, 16, 30),
    ("pca", 3, 16, 24, 50),
    ("pca", 1, 24, 16, 90),
    ("pca", 4, 16, 16, 20),
]
SPEC_IDS = [f"{m}-{c}ch" for m, c, *_ in STREAM_SPECS]


@pytest.fixture(scope="module")
def streams():
    out = {}
    for i, (method, ch, h, w, q) in enumerate(STREAM_SPECS):
        img = image(h, w, ch, i)
        data = lmcodec.encode(img, q, method=method, threads=1)
        out[(method, ch)] = (img, data, lmcodec.decode(data, threads=1))
    return out


def check_damaged(data: bytes, ref_data: bytes, ref: np.ndarray, what: str, pil: bool = True) -> bool:
    """decode / info / Pillow on damaged bytes: LmcError (or, for a mutation
    that leaves a valid stream, the reference image). Returns True if the
    decode succeeded."""
    out, err, dt = timed(lmcodec.decode, data, threads=1)
    assert dt < MAX_SECONDS, f"{what}: decode took {dt:.2f} s"
    ok = err is None
    if err is not None:
        assert isinstance(err, LmcError), f"{what}: decode raised {type(err).__name__}: {err}"
        assert str(err), f"{what}: empty error message"
    else:
        assert out.shape == ref.shape and np.array_equal(out, ref), f"{what}: decoded a wrong image"
    _, err, dt = timed(lmcodec.info, data)
    assert dt < MAX_SECONDS, f"{what}: info took {dt:.2f} s"
    assert err is None or isinstance(err, LmcError), f"{what}: info raised {type(err).__name__}: {err}"
    assert err is None or not ok, f"{what}: info refused a stream that decodes"
    if pil:
        res, err, dt = timed(pil_open_load, data)
        assert dt < MAX_SECONDS, f"{what}: Image.open took {dt:.2f} s"
        assert err is None or isinstance(err, PIL_ERRORS), f"{what}: Image.open raised {type(err).__name__}: {err}"
        assert (err is None) == ok, f"{what}: Pillow and decode disagree ({err!r})"
    return ok


# ------------------------------------------------------- mutation testing


@pytest.mark.parametrize("key", [(m, c) for m, c, *_ in STREAM_SPECS], ids=SPEC_IDS)
def test_every_truncation_is_an_error(streams, key):
    _, data, ref = streams[key]
    for n in range(len(data)):
        assert not check_damaged(data[:n], data, ref, f"truncated to {n}/{len(data)} bytes")
    # appending anything is an error too (no byte may follow ENDC)
    for extra in (b"\x00", b"ENDC", data[-12:], data):
        assert not check_damaged(data + extra, data, ref, f"{len(extra)} trailing bytes")


def mutate(data: bytes, rng: random.Random):
    b = bytearray(data)
    kind = rng.randrange(7)
    pos = rng.randrange(len(b))
    if kind == 0:  # one bit
        bit = rng.randrange(8)
        b[pos] ^= 1 << bit
        return bytes(b), f"bit {bit} of byte {pos}", True
    if kind == 1:  # one byte, any value
        b[pos] = (b[pos] + rng.randrange(1, 256)) % 256
        return bytes(b), f"byte {pos}", True
    if kind == 2:  # burst of up to 32 bits inside 4 bytes
        for i in range(pos, min(pos + 4, len(b))):
            b[i] ^= rng.randrange(1, 256)
        return bytes(b), f"burst at {pos}", True
    if kind == 3:  # several scattered bytes
        for _ in range(rng.randrange(2, 9)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b), "scattered bytes", False  # may (never in practice) restore the original
    if kind == 4:  # insert
        b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        return bytes(b), f"insert at {pos}", True
    if kind == 5:  # delete
        del b[pos:pos + rng.randrange(1, 5)]
        return bytes(b), f"delete at {pos}", True
    # duplicate a slice somewhere else
    a = rng.randrange(len(b))
    s = bytes(b[a:a + rng.randrange(1, 64)])
    b[pos:pos] = s
    return bytes(b), f"copy {len(s)} bytes to {pos}", True


@pytest.mark.parametrize("key", [(m, c) for m, c, *_ in STREAM_SPECS], ids=SPEC_IDS)
def test_random_mutations_are_errors(streams, key):
    _, data, ref = streams[key]
    rng = random.Random(f"{key[0]}/{key[1]}")
    successes = []
    for i in range(2000):
        m, what, must_fail = mutate(data, rng)
        if m == data:
            continue
        ok = check_damaged(m, data, ref, f"mutation #{i} ({what})")
        if ok:
            successes.append(what)
        # CRC-32 detects every error burst of <= 32 bits, insertion and deletion
        # change the chunk framing: these can never pass.
        assert not (ok and must_fail), f"undetected damage: {what}"
    assert not successes, f"mutations decoded to the original image: {successes}"


# --------------------------------------------------------- hypothesis fuzz

FUZZ_SETTINGS = settings(max_examples=300, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_refused(data: bytes, allow_success: bool = False):
    for fn in (lambda d: lmcodec.decode(d, threads=1), lmcodec.info, pil_open_load):
        res, err, dt = timed(fn, data)
        assert dt < MAX_SECONDS, f"{fn} took {dt:.2f} s"
        if err is None:
            assert allow_success, f"{fn} accepted {data[:64]!r}..."
        else:
            assert isinstance(err, PIL_ERRORS if fn is pil_open_load else LmcError), repr(err)


@FUZZ_SETTINGS
@given(st.binary(max_size=2048))
def test_fuzz_arbitrary_bytes(data):
    assert_refused(data)


@FUZZ_SETTINGS
@given(st.binary(max_size=2048))
def test_fuzz_bytes_after_signature(data):
    assert_refused(SIG + data)


@st.composite
def forged_streams(draw, pool):
    """CRC-correct streams: random (often invalid) HEAD fields, then a random
    sequence of chunks whose payloads are random bytes or real payloads of
    other valid streams, then (usually) ENDC."""
    codec = draw(st.sampled_from([1, 2, 1, 2, 0, 3]))
    method = {1: "hyperprior", 2: "pca"}.get(codec)
    w = draw(st.one_of(st.integers(1, 80), st.sampled_from([0, 65535, 65536, 0xFFFFFFFF])))
    h = draw(st.one_of(st.integers(1, 80), st.sampled_from([0, 1, 65536, 0xFFFFFFFF])))
    ch = draw(st.sampled_from([1, 3, 4, 1, 3, 4, 0, 2, 5, 255]))
    head = bytearray(40)
    head[0] = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
    head[1] = draw(st.sampled_from([0, 0, 0, 1]))
    head[2] = ch
    head[3] = draw(st.sampled_from([8, 8, 8, 16]))
    struct.pack_into("<II", head, 4, w, h)
    head[12] = codec
    head[13] = draw(st.sampled_from([0, 0, 0, 1]))
    struct.pack_into("<H", head, 14, draw(st.one_of(st.integers(100, 10000), st.sampled_from([0, 99, 10001, 65535]))))
    head[16:32] = model_id(method) if method and draw(st.integers(0, 4)) > 0 else draw(st.binary(min_size=16, max_size=16))
    flags = draw(st.sampled_from([0, 0, 1, 1, 2, 0x80000000]))
    struct.pack_into("<I", head, 32, flags)
    struct.pack_into("<I", head, 36, draw(st.sampled_from([0, 0, 0, 1, h, h + 1 if h < 0xFFFFFFFF else 0])))
    if head[1] > 0:
        head += draw(st.binary(max_size=16))
    chunks = [(b"HEAD", bytes(head))]
    ctypes = st.sampled_from([b"SIDE", b"LATN", b"ALPH", b"iccp", b"exif", b"xmpd", b"abcd", b"ABCD", b"HEAD", b"ENDC"])
    real = [c for stream in pool for c in split_chunks(stream)[1:-1]]
    payload = st.one_of(st.binary(max_size=64), st.sampled_from([d for _, d in real]))
    body = draw(st.lists(st.tuples(ctypes, payload), max_size=6))
    if draw(st.booleans()):  # a plausible layout with real payloads
        body = [c for c in real if draw(st.booleans())][:5] + body[:1]
    chunks += body
    if draw(st.integers(0, 9)) > 0:
        chunks.append((b"ENDC", b""))
    data = join_chunks(chunks)
    if draw(st.integers(0, 9)) == 0:
        data += draw(st.binary(min_size=1, max_size=8))
    return data


@pytest.fixture(scope="module")
def payload_pool(streams):
    return [d for _, d, _ in streams.values()]


def test_fuzz_structured_streams(payload_pool):
    @FUZZ_SETTINGS
    @given(forged_streams(payload_pool))
    def run(data):
        out, err, dt = timed(lmcodec.decode, data, threads=1)
        assert dt < MAX_SECONDS, f"decode took {dt:.2f} s"
        if err is not None:
            assert isinstance(err, LmcError), repr(err)
        else:  # a forged stream may decode, but only to what its header says
            inf = lmcodec.info(data)
            shape = (inf.height, inf.width) + (() if inf.channels == 1 else (inf.channels,))
            assert out.shape == shape and out.dtype == np.uint8
        _, ierr, _ = timed(lmcodec.info, data)
        assert ierr is None or isinstance(ierr, LmcError), repr(ierr)
        assert err is not None or ierr is None
        res, perr, _ = timed(pil_open_load, data)
        assert perr is None or isinstance(perr, PIL_ERRORS), repr(perr)
        assert (perr is None) == (err is None), (perr, err)

    run()


@st.composite
def forged_valid_payloads(draw, f):
    """Issue 27's attacker: valid containers (CRCs recomputed) around payloads
    coded with the models' own tables (fuzz/forge.py), then hostile header
    fields: sizes far from the payload's, re-laid blocks, cut or flipped
    chunks, a hopeless alpha stream."""
    method = draw(st.sampled_from(["hyperprior", "pca"]))
    ch = draw(st.sampled_from([1, 3, 4]))
    w, h = draw(st.integers(1, 96)), draw(st.integers(1, 96))
    hw = draw(st.one_of(st.just((w, h)), st.tuples(st.integers(1, 4096), st.integers(1, 4096)),
                        st.sampled_from([(8192, 8192), (65535, 1), (1, 65535), (16384, 4096)])))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    if method == "hyperprior":
        # the side information is valid for the *header's* size (the expensive
        # case), the latents are another stream's or random bytes
        zvals = f.z.mode + rng.integers(-1, 2, f.N) * draw(st.integers(0, 1))
        side = f.z_payload(*hw, values=zvals)
        lat = draw(st.one_of(st.binary(max_size=64), st.just(bytes(rng.integers(0, 256, 4096, np.uint8)))))
        chunks = [(b"SIDE", side), (f.latents_chunk, lat)]
        codec = 1
    else:
        chunks = [(b"LATN", f.pca_payload(w, h, 5000, seed=draw(st.integers(0, 3))))]
        codec = 2
    flags = 0
    if ch == 4:
        n = w * h
        alpha = f.alpha_payload(n) if draw(st.booleans()) else f.alpha_payload(n, bytes(draw(st.binary(max_size=64))))
        chunks.append((b"ALPH", alpha))
        flags = 1
    cut = draw(st.sampled_from([None, 0.0, 0.5, 0.99]))
    if cut is not None:
        i = draw(st.integers(0, len(chunks) - 1))
        t, d = chunks[i]
        chunks[i] = (t, d[: int(len(d) * cut)])
    if draw(st.integers(0, 4)) == 0:
        i = draw(st.integers(0, len(chunks) - 1))
        t, d = chunks[i]
        if d:
            b = bytearray(d)
            b[draw(st.integers(0, len(b) - 1))] ^= 1 << draw(st.integers(0, 7))
            chunks[i] = (t, bytes(b))
    q = draw(st.sampled_from([5000, 5000, 100, 10000, 7321]))
    return forge.container(forge.head(hw[0], hw[1], ch, codec, q, f.ids[method], flags), chunks)


def test_fuzz_forged_valid_payloads(forger):
    """CI's short structure-aware run (fuzz/forge.py): whatever the header
    claims, a valid-looking payload either decodes to the header's shape or
    is refused with LmcError, within MAX_SECONDS (the decoder refuses payloads
    too short for what the header implies before doing the work), and
    Pillow agrees."""
    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
    @given(forged_valid_payloads(forger))
    def run(data):
        out, err, dt = timed(lmcodec.decode, data, threads=1)
        assert dt < MAX_SECONDS, f"decode took {dt:.2f} s: {lmcodec.info(data, sections=True)}"
        if err is not None:
            assert isinstance(err, LmcError), repr(err)
        else:
            inf = lmcodec.info(data)
            assert out.shape == (inf.height, inf.width) + (() if inf.channels == 1 else (inf.channels,))
        res, perr, _ = timed(pil_open_load, data)
        assert perr is None or isinstance(perr, PIL_ERRORS), repr(perr)
        assert (perr is None) == (err is None), (perr, err)

    run()


# ------------------------------------------------------- forged headers


def decode_or_error(data: bytes):
    out, err, dt = timed(lmcodec.decode, data, threads=1)
    assert dt < MAX_SECONDS, f"decode took {dt:.2f} s"
    assert err is None or isinstance(err, LmcError), repr(err)
    return out, err


def rewrite(data: bytes, **changes) -> bytes:
    header, chunks = _core.internal.container_read(data)
    drop = changes.pop("_drop", ())
    header.update(changes)
    return _core.internal.container_write(header, [(t, c) for t, c in chunks if t not in drop])


@pytest.mark.parametrize("key", [(m, c) for m, c, *_ in STREAM_SPECS], ids=SPEC_IDS)
def test_forged_dimensions(streams, key):
    """The latents do not carry the image size (the CRC only detects damage):
    a forged size that changes the number of latents (64-pixel units for the
    hyperprior, 8x8 blocks for PCA) or of alpha samples is an error; one that
    keeps the latent grid decodes to a crop/extension of the same grid; a
    rearranged grid of the same count is an error or an image of the forged
    size -- never a crash or an out-of-bounds access."""
    method, ch = key
    img, data, ref = streams[key]
    h, w = ref.shape[:2]
    unit = 64 if method == "hyperprior" else 8
    for nh, nw in [(h, w + 1), (h + 1, w), (h - 1, w), (h, w - 1), (1, 1), (h, 65535), (4096, 4096), (h * 5, w),
                   (h, w + unit), (w, h), (unit + 1, unit + 1)]:
        forged = rewrite(data, width=nw, height=nh)
        out, err = decode_or_error(forged)
        gh, gw, ngh, ngw = -(-h // unit), -(-w // unit), -(-nh // unit), -(-nw // unit)
        if (ngh, ngw) != (gh, gw):
            if ngh * ngw != gh * gw:  # another symbol count: the rANS streams cannot end right
                assert err is not None, f"{nw}x{nh}: latent count changed but the stream decoded"
            else:  # same count, other arrangement (e.g. transposed): error or an image of the forged size
                assert err is not None or out.shape[:2] == (nh, nw)
            continue
        if ch == 4 and (nh, nw) != (h, w):
            assert err is not None, f"{nw}x{nh}: alpha plane size changed but the stream decoded"
            continue
        assert err is None, f"{nw}x{nh}: {err}"
        assert out.shape[:2] == (nh, nw)
        ch_, cw = min(h, nh), min(w, nw)
        assert np.array_equal(out[:ch_, :cw], ref[:ch_, :cw]), f"{nw}x{nh}: not the same grid"


@pytest.mark.parametrize("key", [(m, c) for m, c, *_ in STREAM_SPECS], ids=SPEC_IDS)
def test_forged_channels(streams, key):
    method, ch = key
    img, data, ref = streams[key]
    # invalid channel counts: Unsupported
    for bad in (0, 2, 5, 255):
        _, err = decode_or_error(patch_head(data, channels=bad))
        assert err is not None and ("channel" in str(err) or "HAS_ALPHA" in str(err)), (bad, err)
    # RGBA without the ALPH chunk, alpha flag on a non-RGBA image: errors
    if ch != 4:
        _, err = decode_or_error(rewrite(data, channels=4))
        assert err is not None and "alpha" in str(err).lower()
        _, err = decode_or_error(patch_head(data, flags=1))
        assert err is not None
    else:
        _, err = decode_or_error(patch_head(data, channels=3))
        assert err is not None  # HAS_ALPHA with 3 channels
        _, err = decode_or_error(rewrite(data, flags=0, _drop=("ALPH",)))
        assert err is not None  # 4 channels, no ALPH chunk
        out, err = decode_or_error(rewrite(data, channels=3, flags=0, _drop=("ALPH",)))
        assert err is None and np.array_equal(out, ref[..., :3])
    # the colour planes are coded as RGB in every case, so gray <-> RGB forgeries
    # are well-formed streams of another image mode: they decode consistently
    if ch == 3:
        out, err = decode_or_error(rewrite(data, channels=1))
        assert err is None and out.shape == ref.shape[:2]
        expect = ((ref.astype(np.uint32).sum(-1) + 1) // 3).astype(np.uint8)
        assert np.array_equal(out, expect)


@pytest.mark.parametrize("key", [(m, c) for m, c, *_ in STREAM_SPECS], ids=SPEC_IDS)
def test_forged_quality_decodes_without_crash(streams, key):
    _, data, ref = streams[key]
    for q in (1.0, 1.01, 37.5, 99.99, 100.0):
        out, err = decode_or_error(rewrite(data, quality=q))
        # hyperprior: quality only scales the latents; PCA: another quality
        # selects other tables and steps, so the payload is too short for them,
        # fails in rANS, or has a coefficient out of range (CorruptStream).
        assert err is None or any(w in str(err) for w in ("range", "rans", "cannot hold")), err
        if err is None:
            assert out.shape == ref.shape
    for raw in (0, 99, 10001, 65535):
        _, err = decode_or_error(patch_head(data, quality_x100=raw))
        assert err is not None and "quality" in str(err)


@pytest.mark.parametrize("key", [(m, c) for m, c, *_ in STREAM_SPECS], ids=SPEC_IDS)
def test_forged_codec_and_model(streams, key):
    method, ch = key
    _, data, ref = streams[key]
    other = "pca" if method == "hyperprior" else "hyperprior"
    codec = {"hyperprior": 1, "pca": 2}
    # another model id: ModelMismatch naming both ids
    fake = bytes(range(16))
    _, err = decode_or_error(rewrite(data, model_id=fake))
    assert err is not None and fake.hex() in str(err) and model_id(method).hex() in str(err)
    # the other codec, our model id: refused (ModelMismatch, or no SIDE chunk)
    _, err = decode_or_error(patch_head(data, codec=codec[other]))
    assert err is not None
    # the other codec with the other model's id: the other decoder runs on
    # these payloads and must fail cleanly (or decode something of the right shape)
    header, chunks = _core.internal.container_read(data)
    header.update(codec=codec[other], model_id=model_id(other))
    if other == "hyperprior":
        lat = "LATC" if "LATC" in dict(_core.internal.container_read(
            lmcodec.encode(np.zeros((8, 8, 3), np.uint8), 50))[1]) else "LATN"
        chunks = [("SIDE", b"\x00" * 8)] + [(lat if t == "LATN" else t, c) for t, c in chunks if t != "SIDE"]
    else:  # the PCA decoder reads its LATN (a context model's latents are LATC)
        chunks = [("LATN" if t == "LATC" else t, c) for t, c in chunks]
    forged = _core.internal.container_write(header, chunks)
    out, err = decode_or_error(forged)
    assert err is not None or out.shape == ref.shape
    # unknown codec ids / versions / reserved bits / bit depth / strips: refused
    for kw, word in [({"codec": 0}, "codec"), ({"codec": 3}, "codec"), ({"bit_depth": 16}, "bit depth"),
                     ({"version_major": 2}, "version"), ({"version_major": 0}, "version"),
                     ({"reserved": 1}, "reserved"), ({"flags": 2}, "flag"),
                     ({"tile_height": ref.shape[0]}, "strip"), ({"tile_height": ref.shape[0] + 1}, "tile_height")]:
        _, err = decode_or_error(patch_head(data, **kw))
        assert err is not None and word in str(err).lower(), (kw, err)
        assert not check_damaged(patch_head(data, **kw), data, ref, repr(kw), pil=True)


def test_forge_needs_side_chunk(streams):
    """A PCA stream relabelled as hyperprior has no SIDE chunks: refused."""
    _, data, _ = streams[("pca", 3)]
    with pytest.raises(LmcError):
        rewrite(data, codec=1)
    _, err = decode_or_error(patch_head(data, codec=1, model_id=model_id("hyperprior")))
    assert err is not None and "SIDE" in str(err)


@pytest.mark.parametrize("method", ["hyperprior", "pca"])
@pytest.mark.parametrize("w,h", [(60000, 60000), (65535, 65535), (65535, 4097), (70000, 1), (1, 0xFFFFFFFF),
                                 (0xFFFFFFFF, 0xFFFFFFFF)])
def test_oversized_headers_refused_before_allocating(streams, method, w, h):
    _, data, _ = streams[(method, 3)]
    forged = patch_head(data, width=w, height=h)
    gc.collect()
    before = rss_bytes()
    for fn in (lambda d: lmcodec.decode(d, threads=1), lmcodec.info, pil_open_load):
        _, err, dt = timed(fn, forged)
        assert dt < MAX_SECONDS, f"{fn}: {dt:.2f} s"
        assert isinstance(err, PIL_ERRORS if fn is pil_open_load else LmcError), repr(err)
        if fn is not pil_open_load:
            assert "limit" in str(err), err
    assert rss_bytes() - before < 16 << 20


@pytest.mark.parametrize("method", ["hyperprior", "pca"])
def test_lowered_limits_refuse_stream(streams, method):
    _, data, _ = streams[(method, 3)]
    old = lmcodec.get_limits()
    try:
        lmcodec.set_limits(max_pixels=100)
        for fn in (lmcodec.decode, lmcodec.info):
            with pytest.raises(LmcError, match="max_pixels"):
                fn(data)
        lmcodec.set_limits(max_pixels=old["max_pixels"], max_chunk_bytes=16)
        with pytest.raises(LmcError, match="max_chunk_bytes"):
            lmcodec.decode(data)
    finally:
        lmcodec.set_limits(**old)
    lmcodec.decode(data)


PEAK_SCRIPT = r"""
import resource, sys, time
import lmcodec
data = open(sys.argv[1], "rb").read()
lmcodec.decode(open(sys.argv[2], "rb").read(), threads=1)  # warm up: models loaded, caches filled
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    lmcodec.decode(data, threads=1)
    print("decoded", end=" ")
except lmcodec.LmcError as e:
    print("LmcError", end=" ")
print(time.perf_counter() - t0, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) * 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux-specific")
@pytest.mark.parametrize("method,w,h", [("hyperprior", 16384, 16384), ("pca", 16384, 16384), ("pca", 8192, 8192),
                                        ("pca", 65535, 4096), ("hyperprior", 65535, 4096)])
def test_large_header_small_payload_is_cheap(streams, tmp_path, method, w, h):
    """A header within the default limits but far larger than its payload (a
    2 KB 'image' of 2^28 pixels) must fail fast without committing the memory
    the image would need (peak RSS of a fresh process)."""
    _, data, _ = streams[(method, 3)]
    (tmp_path / "forged.lmc").write_bytes(rewrite(data, width=w, height=h))
    (tmp_path / "ok.lmc").write_bytes(data)
    r = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tmp_path / "forged.lmc"), str(tmp_path / "ok.lmc")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    outcome, dt, peak = r.stdout.split()
    assert outcome == "LmcError"
    assert float(dt) < MAX_SECONDS, f"{w}x{h}: {float(dt):.2f} s"
    assert int(peak) < 96 << 20, f"{w}x{h}: peak RSS grew by {int(peak) >> 20} MiB"


# ------------------------------------------------------------ regressions


def regression_files():
    return sorted(REGRESSIONS.glob("*.lmc")) if REGRESSIONS.is_dir() else []


def repair(data: bytes) -> bytes:
    """What fuzz/fuzz_decode.cc does: model id of the named codec + every CRC."""
    b = bytearray(data)
    pos, first = 8, True
    while len(b) - pos >= 12:
        (n,) = struct.unpack_from("<I", b, pos + 4)
        if n + 12 > len(b) - pos:
            break
        if first and b[pos:pos + 4] == b"HEAD" and n >= 32 and b[pos + 20] in (1, 2):
            b[pos + 24:pos + 40] = model_id({1: "hyperprior", 2: "pca"}[b[pos + 20]])
        struct.pack_into("<I", b, pos + 8 + n, zlib.crc32(bytes(b[pos:pos + 8 + n])))
        pos += 12 + n
        first = False
    return bytes(b)


@pytest.mark.parametrize("path", regression_files(), ids=lambda p: p.name)
def test_fuzzer_regressions(path):
    """Inputs that once crashed the decoder. They were found through the
    fuzzer's repair step (right model id, fixed CRCs), which is replayed here
    so they keep exercising the same code after the weights are re-exported."""
    raw = path.read_bytes()
    for data in (raw, repair(raw)):
        out, err, dt = timed(lmcodec.decode, data, threads=1)
        assert dt < MAX_SECONDS, f"{path.name}: {dt:.2f} s"
        assert isinstance(err, LmcError), f"{path.name}: {err!r}"
        _, err, _ = timed(lmcodec.info, data)
        assert err is None or isinstance(err, LmcError)


# ----------------------------------------------------- memory, threads


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc (Linux)")
def test_rss_flat_over_many_cycles(streams):
    rng = np.random.default_rng(3)
    imgs = [image(16, 16, c, 50 + c) for c in (1, 3, 4)]
    bad = [d[:-5] for _, d, _ in streams.values()] + [patch_head(d, width=9999) for _, d, _ in streams.values()]

    def cycle(i):
        img = imgs[i % 3]
        method = "hyperprior" if i % 10 == 0 else "pca"
        d = lmcodec.encode(img, 10 + i % 90, method=method, threads=1)
        out = lmcodec.decode(d, threads=1)
        assert out.shape == img.shape
        lmcodec.info(d)
        for b in (bad[i % len(bad)], d[: int(rng.integers(1, len(d)))]):
            try:
                lmcodec.decode(b, threads=1)
            except LmcError:
                pass
        if i % 50 == 0:
            with Image.open(io.BytesIO(d)) as im:
                im.load()

    t0 = time.perf_counter()
    for i in range(300):  # warm-up: caches, scratch buffers, allocator arenas
        cycle(i)
    gc.collect()
    before = rss_bytes()
    n = 300
    while time.perf_counter() - t0 < 14 and n < 3000:
        cycle(n)
        n += 1
    gc.collect()
    grown = rss_bytes() - before
    assert n >= 1000, f"only {n} cycles in the time budget"
    assert grown < 20 << 20, f"RSS grew by {grown / 2**20:.1f} MiB over {n - 300} cycles"


def test_error_messages_are_per_thread(streams):
    """lmc_last_error() is thread-local: concurrent failing decodes must each
    report their own error (the serial message), and concurrent successful
    decodes are unaffected."""
    cases = []
    for _, d, ref in streams.values():
        cases.append((d, ref, None))
        for bad in (d[:-3], patch_head(d, width=70000), rewrite(d, model_id=bytes(16)), d[:40]):
            try:
                lmcodec.decode(bad, threads=1)
                raise AssertionError("expected an error")
            except LmcError as e:
                cases.append((bad, None, str(e)))
    failures = []

    def work(k):
        r = random.Random(k)
        for _ in range(40):
            data, ref, msg = r.choice(cases)
            try:
                out = lmcodec.decode(data, threads=1)
                if ref is None or not np.array_equal(out, ref):
                    failures.append("wrong result")
            except LmcError as e:
                if str(e) != msg:
                    failures.append(f"{e} != {msg}")

    ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not failures, failures[:5]


# ------------------------------------------------- sanitizers and fuzzing


def _compiles_with(cxx: str, flags, source: str) -> bool:
    if not cxx or shutil.which(cxx) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "t.cc", Path(tmp) / "t"
        src.write_text(source)
        r = subprocess.run([cxx, *flags, str(src), "-o", str(exe)], capture_output=True)
        if r.returncode != 0:
            return False
        if "fuzzer" in " ".join(flags):
            return True
        return subprocess.run([str(exe)], capture_output=True, env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"}).returncode == 0


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cpp_units_under_asan_ubsan():
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not _compiles_with(cxx, ["-fsanitize=address,undefined"], "int main() { return 0; }\n"):
        pytest.skip(f"the C++ compiler ({cxx}) cannot build and run -fsanitize=address,undefined programs "
                    "(install libasan/libubsan, or clang with compiler-rt)")
    build = ROOT / "build" / "asan"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    # -O1: ASan builds at -O3 take minutes longer and find nothing more
    r = subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DLMCODEC_SANITIZE=ON",
                        "-DLMCODEC_BUILD_TESTS=ON", "-DLMCODEC_BUILD_PYTHON=OFF", "-DCMAKE_BUILD_TYPE=Release",
                        "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1", "-DCMAKE_C_FLAGS_RELEASE=-O1 -g1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run(["cmake", "--build", str(build), "-j", str(min(os.cpu_count() or 2, 4))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure", "-j", "2"],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0 and "LeakSanitizer does not work under ptrace" in r.stdout + r.stderr:
        env["ASAN_OPTIONS"] = env["ASAN_OPTIONS"].replace("detect_leaks=1", "detect_leaks=0")
        r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure", "-j", "2"],
                           capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-4000:]
    assert "tests passed" in r.stdout and "0 tests" not in r.stdout.split("tests passed")[0][-12:]


def _fuzz_clang():
    for cxx in (os.environ.get("CXX_FUZZ"), "clang++-14", "clang++"):
        if cxx and _compiles_with(cxx, ["-fsanitize=fuzzer,address,undefined"],
                                  'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long)'
                                  "{ return 0; }\n"):
            return cxx
    return None


@pytest.mark.skipif(sys.platform != "linux", reason="libFuzzer run is set up for Linux")
@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_short_fuzz_run():
    cxx = _fuzz_clang()
    if cxx is None:
        pytest.skip("clang with libFuzzer + ASan/UBSan runtimes not found (run fuzz/install_deps.sh)")
    env = dict(os.environ, CXX_FUZZ=cxx)
    r = subprocess.run(["bash", str(ROOT / "fuzz" / "run.sh"), "60"], capture_output=True, text=True, env=env,
                       timeout=600)
    print(r.stdout[-3000:])
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert "execs=" in r.stdout


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak-RSS reset")
@pytest.mark.parametrize("op,bytes_per_pixel", [("encode", 48), ("decode", 40)])
def test_4097x3001_round_trip_with_bounded_memory(op, bytes_per_pixel):
    """A 12.3-megapixel image (odd size) encodes and decodes, and the peak
    memory of the call stays far below the whole-image activations (one layer
    alone would take 64 bytes/pixel; the full network several times that).
    benchmarks/memory.py measures the 24-megapixel case for the README."""
    spec = importlib.util.spec_from_file_location("lmc_memory_bench", ROOT / "benchmarks" / "memory.py")
    mem = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mem)
    w, h = 4097, 3001
    r = mem.measure(w, h, op, threads=2, quality=50, method="hyperprior")
    assert r["ok"], r
    assert r["extra_peak"] < bytes_per_pixel * w * h, f"{op}: peak +{r['extra_peak'] >> 20} MiB"
