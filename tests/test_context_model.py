"""The context entropy model in the core (issue 21, phase 3; core/context_model.h).

The shipped hyperprior declares a context model (arch.ctx): its streams carry the latents in a LATC chunk
of band streams. Checked here: the C++ decoder's symbols and means equal the Python integer reference
(training/int_context.py through training/reference_codec.py) exactly; streams and pixels are the same on
every kernel path and thread count; damaged LATC chunks are clean errors; the weights round-trip.
"""
import struct
import zlib

import numpy as np
import pytest

import lmcodec
from conftest import MODELS, build_raw, natural, raw_chunks
from lmcodec import _core

HYPER = MODELS / "hyperprior.lmw"


_chunks = raw_chunks
_build = build_raw


def _replace(data, ctype, payload, new_type=None):
    return _build([((new_type or t) if t == ctype else t, payload if t == ctype else d) for t, d in _chunks(data)])


def test_shipped_model_declares_a_context_model_and_writes_latc():
    data = lmcodec.encode(natural(96, 160), 60)
    types = [t for t, _ in _chunks(data)]
    assert b"LATC" in types and b"LATN" not in types
    assert lmcodec.decode(data).shape == (96, 160, 3)


@pytest.mark.parametrize("quality", [5, 60, 97])
def test_core_decoder_matches_the_python_integer_reference(quality):
    """Symbols, scale indexes and means bit-identical; pixels within 1 (torch's float g_s)."""
    pytest.importorskip("torch")
    from training.reference_codec import ReferenceCodec

    ref = ReferenceCodec(HYPER)
    assert ref.ctx is not None
    img = natural(150, 290, seed=quality)
    data = lmcodec.encode(img, quality)
    ex = _core.internal.hyperprior_explain(str(HYPER), data, 2)
    _, z, r, mu, idx = ref._decode_latents(data)
    assert np.array_equal(ex["z"], z[0].numpy())
    assert np.array_equal(ex["r"], r[0].numpy())
    assert np.array_equal(ex["idx"], idx[0].numpy())
    assert np.array_equal(ex["mu"], mu[0].numpy())
    assert np.abs(ref.decode(data).astype(int) - lmcodec.decode(data).astype(int)).max() <= 1


def test_bit_exact_across_kernel_paths_threads_and_bands():
    """Two LATC bands (more than 32 latent rows); every kernel path and 1..3 threads give the same stream
    and the same pixels."""
    img = natural(560, 96, seed=3)
    ref_data = ref_pix = None
    try:
        for path in _core.kernel_paths():
            _core.set_kernels(path)
            for threads in (1, 3):
                data = lmcodec.encode(img, 45, threads=threads)
                pix = lmcodec.decode(data, threads=threads)
                if ref_data is None:
                    ref_data, ref_pix = data, pix
                assert data == ref_data, (path, threads)
                assert np.array_equal(pix, ref_pix), (path, threads)
    finally:
        _core.set_kernels("auto")
    lat = dict(_chunks(ref_data))[b"LATC"]
    assert lat[0] < 0x80 or lat[1] < 0x80  # a LEB128 size of band 0 leads the chunk


@pytest.mark.parametrize("damage", ["truncate", "size_too_big", "size_unterminated", "garbage", "empty"])
def test_damaged_latc_is_a_clean_error(damage):
    data = lmcodec.encode(natural(560, 96, seed=4), 40)
    lat = dict(_chunks(data))[b"LATC"]
    bad = {
        "truncate": lat[:len(lat) // 2],
        "size_too_big": b"\xff\xff\xff\x0f" + lat[2:],
        "size_unterminated": b"\xff" * 12,
        "garbage": bytes((7 * i + 11) % 256 for i in range(len(lat))),
        "empty": b"",
    }[damage]
    with pytest.raises(lmcodec.LmcError):
        lmcodec.decode(_replace(data, b"LATC", bad))


def test_latc_and_latn_are_not_interchangeable():
    data = lmcodec.encode(natural(64, 64), 50)
    with pytest.raises(lmcodec.LmcError, match="LATN"):
        lmcodec.decode(_replace(data, b"LATC", dict(_chunks(data))[b"LATC"], new_type=b"LATN"))


def test_archived_plain_hyperprior_streams_still_decode():
    """The weights before the context model (archived) keep decoding their LATN streams (tests/data goldens
    check the bits; here: they are found and are not context models)."""
    archived = sorted(MODELS.glob("hyperprior-*.lmw"))
    assert archived
    for p in archived:
        from training import lmw

        assert "arch.ctx" not in lmw.read(p).meta
