"""Reader and writer of the lmcodec weights file (.lmw); see docs/weights.md."""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"LMCW"
VERSION = 1
ALIGN = 64

DTYPES = {0: np.float32, 1: np.float16, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.uint16, 6: np.uint32}
DTYPE_CODES = {np.dtype(v): k for k, v in DTYPES.items()}

T_I64, T_F64, T_STR, T_I64A, T_F64A = range(5)


@dataclass
class WeightsFile:
    meta: dict = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    model_id: bytes = b""


def _enc_meta(key: str, value) -> bytes:
    k = key.encode("ascii")
    out = struct.pack("<H", len(k)) + k
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, (int, np.integer)):
        return out + struct.pack("<Bq", T_I64, int(value))
    if isinstance(value, (float, np.floating)):
        return out + struct.pack("<Bd", T_F64, float(value))
    if isinstance(value, str):
        b = value.encode("utf-8")
        return out + struct.pack("<BI", T_STR, len(b)) + b
    arr = list(value)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
        return out + struct.pack("<BI", T_I64A, len(arr)) + struct.pack(f"<{len(arr)}q", *[int(v) for v in arr])
    return out + struct.pack("<BI", T_F64A, len(arr)) + struct.pack(f"<{len(arr)}d", *[float(v) for v in arr])


def write(path: str | Path, meta: dict, tensors: dict[str, np.ndarray]) -> bytes:
    """Write the file; returns its 16-byte model id."""
    head = MAGIC + struct.pack("<III", VERSION, len(meta), len(tensors))
    head += b"".join(_enc_meta(k, v) for k, v in meta.items())
    descs = []
    blobs = []
    off = 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        code = DTYPE_CODES[arr.dtype]
        nb = arr.nbytes
        n = name.encode("ascii")
        descs.append(struct.pack("<H", len(n)) + n + struct.pack("<BB", code, arr.ndim)
                     + struct.pack(f"<{arr.ndim}I", *arr.shape) + struct.pack("<QQ", off, nb))
        pad = (-nb) % ALIGN
        blobs.append(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes() + b"\0" * pad)
        off += nb + pad
    body = head + b"".join(descs)
    body += b"\0" * ((-len(body)) % ALIGN)
    body += b"".join(blobs)
    body += struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    Path(path).write_bytes(body)
    return hashlib.sha256(body).digest()[:16]


class FormatError(ValueError):
    pass


def read(path_or_bytes) -> WeightsFile:
    data = path_or_bytes if isinstance(path_or_bytes, (bytes, bytearray)) else Path(path_or_bytes).read_bytes()
    if len(data) < 20 or data[:4] != MAGIC:
        raise FormatError("not an lmcodec weights file")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) & 0xFFFFFFFF != crc:
        raise FormatError("weights file CRC mismatch")
    version, nmeta, ntens = struct.unpack_from("<III", data, 4)
    if version != VERSION:
        raise FormatError(f"unsupported weights version {version}")
    pos = 16
    meta = {}
    for _ in range(nmeta):
        (kl,) = struct.unpack_from("<H", data, pos)
        pos += 2
        key = data[pos:pos + kl].decode("ascii")
        pos += kl
        t = data[pos]
        pos += 1
        if t == T_I64:
            (v,) = struct.unpack_from("<q", data, pos)
            pos += 8
        elif t == T_F64:
            (v,) = struct.unpack_from("<d", data, pos)
            pos += 8
        elif t == T_STR:
            (n,) = struct.unpack_from("<I", data, pos)
            pos += 4
            v = data[pos:pos + n].decode("utf-8")
            pos += n
        elif t in (T_I64A, T_F64A):
            (n,) = struct.unpack_from("<I", data, pos)
            pos += 4
            v = list(struct.unpack_from(f"<{n}{'q' if t == T_I64A else 'd'}", data, pos))
            pos += 8 * n
        else:
            raise FormatError(f"bad metadata type {t}")
        meta[key] = v
    descs = []
    for _ in range(ntens):
        (nl,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos:pos + nl].decode("ascii")
        pos += nl
        code, ndim = struct.unpack_from("<BB", data, pos)
        pos += 2
        dims = struct.unpack_from(f"<{ndim}I", data, pos)
        pos += 4 * ndim
        off, nb = struct.unpack_from("<QQ", data, pos)
        pos += 16
        descs.append((name, code, dims, off, nb))
    base = pos + ((-pos) % ALIGN)
    tensors = {}
    for name, code, dims, off, nb in descs:
        dt = np.dtype(DTYPES[code]).newbyteorder("<")
        if nb != int(np.prod(dims, dtype=np.int64)) * dt.itemsize or base + off + nb > len(data) - 4:
            raise FormatError(f"tensor {name} out of bounds")
        tensors[name] = np.frombuffer(data, dtype=dt, count=int(np.prod(dims, dtype=np.int64)), offset=base + off).reshape(dims)
    return WeightsFile(meta, tensors, hashlib.sha256(data).digest()[:16])
