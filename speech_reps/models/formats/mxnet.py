"""Read MXNet's NDArray list files (Gluon ``.params``) with numpy; MXNet is not needed.

Layout (little-endian), as MXNet's NDArray::Save writes it:
  uint64 list magic 0x112, uint64 reserved, uint64 array count, then per array:
    [uint32 array magic: 0xF993FAC9 (v2), 0xF993FACA (v3); 0xF993FAC8 (v1) has uint32 dims;
     no magic at all: legacy, the uint32 ndim comes first]
    v2/v3: int32 storage type (0 = dense; sparse is refused)
    uint32 ndim, ndim dims (int64; uint32 in v1 and legacy), int32 device type, int32 device id,
    int32 dtype flag, raw data
  uint64 name count, then per name: uint64 length + UTF-8 bytes.
Every length, count and shape is checked against the bytes left in the file before anything is
allocated (sizes are multiplied as Python integers, which cannot overflow); names must be UTF-8;
anything unexpected is refused with its offset.
"""

import math
import struct
from collections import OrderedDict

import numpy as np

from speech_reps.models.formats import WeightsError

LIST_MAGIC = 0x112
V1, V2, V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64}


class ParamsFormatError(WeightsError):
    pass


class _Reader:
    def __init__(self, data, path):
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what, at=None):
        raise ParamsFormatError(f"{self.path}: not an MXNet .params file: {what} at byte {self.pos if at is None else at}")

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            self.fail(f"file ends inside a header (needs {size} more bytes)")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def array(self):
        start = self.pos
        first = self.take("<I")
        if first in (V2, V3):
            stype = self.take("<i")
            if stype != 0:
                self.fail(f"storage type {stype} (only dense arrays are supported)", start)
            ndim, dim_fmt = self.take("<I"), "q"
        elif first == V1:
            ndim, dim_fmt = self.take("<I"), "I"
        else:  # legacy: no magic, this was ndim
            ndim, dim_fmt = first, "I"
        if ndim > 32:
            self.fail(f"implausible ndim {ndim}", start)
        shape = tuple(self.take(f"<{ndim}{dim_fmt}")) if ndim > 1 else ((self.take(f"<{dim_fmt}"),) if ndim else ())
        if ndim == 0:
            return np.zeros((0,), dtype=np.float32)  # MXNet writes nothing more for an empty array
        if any(d < 0 for d in shape):
            self.fail(f"negative dimension in shape {shape}", start)
        if any(d > len(self.data) for d in shape):
            self.fail(f"implausible shape {shape} for a file of {len(self.data)} bytes", start)
        self.take("<ii")  # device type and id: irrelevant on load
        flag = self.take("<i")
        if flag not in DTYPES:
            self.fail(f"unknown dtype flag {flag}")
        dtype = np.dtype(DTYPES[flag]).newbyteorder("<")
        count = math.prod(shape)  # a Python int: no int64 overflow can slip past the size check
        nbytes = count * dtype.itemsize
        if self.pos + nbytes > len(self.data):
            self.fail(f"array of shape {shape} needs {nbytes} bytes, file has {len(self.data) - self.pos} left")
        arr = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos).reshape(shape)
        self.pos += nbytes
        return arr.astype(dtype.newbyteorder("="))


def read_params(path):
    """{name: ndarray} of an MXNet NDArray list file, in file order."""
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data, path)
    if r.take("<Q") != LIST_MAGIC:
        r.fail("wrong list magic", 0)
    r.take("<Q")
    count = r.take("<Q")
    if count * 4 > len(data) - r.pos:  # every array takes at least 4 bytes
        r.fail(f"implausible array count {count}")
    arrays = [r.array() for _ in range(count)]
    num_names = r.take("<Q")
    if num_names != count:
        r.fail(f"{num_names} names for {count} arrays")
    names = []
    for _ in range(num_names):
        length = r.take("<Q")
        if r.pos + length > len(data):
            r.fail(f"name of {length} bytes runs past the end of the file")
        try:
            names.append(data[r.pos:r.pos + length].decode("utf-8"))
        except UnicodeDecodeError as e:
            r.fail(f"name {len(names)} is not UTF-8 (byte 0x{data[r.pos + e.start]:02x})", r.pos + e.start)
        r.pos += length
    if r.pos != len(data):
        r.fail(f"{len(data) - r.pos} trailing bytes")
    if len(set(names)) != len(names):
        r.fail("duplicate names")
    return OrderedDict(zip(names, arrays))
