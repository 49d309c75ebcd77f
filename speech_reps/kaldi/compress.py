"""Kaldi's compressed matrix (``src/matrix/compressed-matrix.{h,cc}``), byte for byte, vectorised.

``compress(mat, method)`` returns the bytes Kaldi's ``CompressedMatrix::Write`` puts after an ark
key's ``"\\0B"`` (``copy-feats --compress=true --compression-method=N``): the token ``CM ``,
``CM2 `` or ``CM3 ``, the global header (min, range: float32; rows, cols: int32), then

- ``CM`` (kSpeechFeature, and kAutomaticMethod above 8 rows): per column four uint16
  percentile codes (0th, 25th, 75th, 100th), then one byte per element, column by column;
- ``CM2`` (kTwoByte*, and kAutomaticMethod up to 8 rows): one uint16 per element, row by row;
- ``CM3`` (kOneByte*): one uint8 per element, row by row.

``decompress(obj)`` reads such bytes back as Kaldi's ``CopyToMat`` does.

Byte identity needs Kaldi's arithmetic exactly: its float32 operations, the double constants
that promote a step to double (``+ 0.499`` in FloatToUint16/FloatToUint8, ``+ 0.5`` in
FloatToChar, ``1/63.0`` in CharToFloat), truncation toward zero, and x86's conversion of an
out-of-range double to int (INT_MIN, then clamped). The per-column order statistics come
from a SIMD sort of cache-sized blocks of the transposed matrix; FloatToChar is evaluated
without per-element branches where a column's percentiles are distinct floats (nearly always)
and by the literal rule elsewhere. Kaldi's own quirks kept: the n < 5 rows branch, the
65532..65535 caps, the switch of kAutomaticMethod at 8 rows. Two departures: non-finite input
is refused (Kaldi asserts only on some), and an empty matrix is written as its reader reads it.

The element-wise kernels take the array module as ``xp`` and use only operations of the array
API standard, so the same code can run on other array libraries; the order-statistics driver and
the byte layout are numpy's.
"""

import enum
import struct

import numpy as np


class Method(enum.IntEnum):
    """Kaldi's ``CompressionMethod`` (compressed-matrix.h)."""
    AUTOMATIC = 1             # kSpeechFeature above 8 rows, else kTwoByteAuto
    SPEECH_FEATURE = 2        # CM: per-column percentiles, one byte per element
    TWO_BYTE_AUTO = 3         # CM2 over [min, max]
    TWO_BYTE_SIGNED_INTEGER = 4   # CM2 over [-32768, 32767]
    ONE_BYTE_AUTO = 5         # CM3 over [min, max]
    ONE_BYTE_UNSIGNED_INTEGER = 6  # CM3 over [0, 255]
    ONE_BYTE_ZERO_ONE = 7     # CM3 over [0, 1]


_TOKEN = {1: b"CM ", 2: b"CM2 ", 3: b"CM3 "}  # by Kaldi's DataFormat
_FORMAT = {Method.SPEECH_FEATURE: 1, Method.TWO_BYTE_AUTO: 2, Method.TWO_BYTE_SIGNED_INTEGER: 2,
           Method.ONE_BYTE_AUTO: 3, Method.ONE_BYTE_UNSIGNED_INTEGER: 3,
           Method.ONE_BYTE_ZERO_ONE: 3}
_FIXED_RANGE = {Method.TWO_BYTE_SIGNED_INTEGER: (-32768.0, 65535.0),
                Method.ONE_BYTE_UNSIGNED_INTEGER: (0.0, 255.0),
                Method.ONE_BYTE_ZERO_ONE: (0.0, 1.0)}
_F32 = np.float32
_INV_65535 = _F32(1.52590218966964e-05)  # Uint16ToFloat's float constant, "1/65535"
_INT_MIN = -2147483648.0
_CHUNK = 1 << 15  # elements per piece of the two- and one-byte formats
_COLUMN_BLOCK_BYTES = 1 << 19  # float32 bytes of one block of transposed columns (in L2)


# ---------------------------------------------------------------- element-wise kernels

def c_int(xp, v):
    """C's ``static_cast<int>(double v)`` on x86: truncation toward zero; NaN and values
    outside int32 give INT_MIN (cvttsd2si). ``v``: float64 array; returns float64 integers."""
    ok = (v > -2147483649.0) & (v < 2147483648.0)
    return xp.where(ok, xp.trunc(xp.where(ok, v, 0.0)), _INT_MIN)


def float_to_uint16(xp, x, min_value, range_):
    """FloatToUint16: ``f = (x - min) / range`` in float32, clamped to [0, 1]; then
    ``int(f * 65535 + 0.499)`` where the product is float32 and the sum double. ``x`` finite
    and ``range_`` finite and positive (as ``compress`` ensures), so the sum is in range."""
    f = xp.clip((x - min_value) / range_, _F32(0), _F32(1))
    return xp.astype(xp.astype(f * _F32(65535), xp.float64) + 0.499, xp.uint16)


def float_to_uint8(xp, x, min_value, range_):
    """FloatToUint8: as FloatToUint16 with 255 in place of 65535."""
    f = xp.clip((x - min_value) / range_, _F32(0), _F32(1))
    return xp.astype(xp.astype(f * _F32(255), xp.float64) + 0.499, xp.uint8)


def uint16_to_float(xp, u, min_value, range_):
    """Uint16ToFloat: ``min + range * 1.52590218966964e-05F * u``, all float32, left to right."""
    return min_value + (range_ * _INV_65535) * xp.astype(u, xp.float32)


def float_to_char(xp, x, p0, p25, p75, p100):
    """FloatToChar, exactly, for any column (degenerate percentiles included): the code 0..64
    below p25, 64..192 below p75, else 192..255; ``int(f * n + 0.5)`` with a float32 product
    and a double sum, truncated, clamped to the range."""
    def piece(base, top, n, lo):
        f = (x - base) / (top - base)
        ans = lo + c_int(xp, xp.astype(f * _F32(n), xp.float64) + 0.5)
        return xp.clip(ans, lo, lo + n)
    return xp.astype(xp.where(x < p25, piece(p0, p25, 64, 0),
                              xp.where(x < p75, piece(p25, p75, 128, 64),
                                       piece(p75, p100, 63, 192))), xp.uint8)


def char_to_float(xp, c, p0, p25, p75, p100):
    """CharToFloat: ``p + (q - p) * k * (1/n.0)``: the first product float32, the rest double,
    rounded to float32 on return."""
    k = xp.astype(c, xp.float32)
    def piece(base, top, offset, scale):
        step = (top - base) * (k - _F32(offset))  # float32
        return xp.astype(base, xp.float64) + xp.astype(step, xp.float64) * scale
    v = xp.where(c <= 64, piece(p0, p25, 0, 1 / 64.0),
                 xp.where(c <= 192, piece(p25, p75, 64, 1 / 128.0),
                          piece(p75, p100, 192, 1 / 63.0)))
    return xp.astype(v, xp.float32)


def column_codes(xp, order_stats, min_value, range_):
    """ComputeColHeader: the four uint16 percentile codes (4, cols) of each column from its
    order statistics ``order_stats`` (k, cols) float32: rows 0, n/4, 3n/4, n-1 of the sorted
    column, or its sorted rows 0..k-1 when it has k < 4 rows; each code at least the one before
    plus one (a missing one is exactly that), capped so that all four fit in uint16."""
    u = xp.astype(float_to_uint16(xp, order_stats, min_value, range_), xp.int32)
    codes = [xp.minimum(u[0], 65532)]
    for i, cap in ((1, 65533), (2, 65534), (3, 65535)):
        floor = codes[-1] + 1
        codes.append(xp.minimum(xp.maximum(u[i], floor), cap) if i < u.shape[0] else floor)
    return xp.astype(xp.stack(codes), xp.uint16)


# ---------------------------------------------------------------- the global header

# Kaldi asserts on an Inf, and on a NaN in the first element (MatrixBase::Min starts from it);
# a NaN elsewhere, or anything in the fixed-range methods, it encodes as garbage. We refuse all.
_NON_FINITE = "cannot compress a matrix with NaN or Inf"


def global_header(mat, method):
    """(format, min_value, range) of ComputeGlobalHeader; ``mat`` float32 with rows."""
    method = Method(method)
    if method == Method.AUTOMATIC:
        method = Method.SPEECH_FEATURE if mat.shape[0] > 8 else Method.TWO_BYTE_AUTO
    if method in _FIXED_RANGE:
        min_value, range_ = _FIXED_RANGE[method]
        return _FORMAT[method], _F32(min_value), _F32(range_)
    if mat.size == 0:
        raise ValueError(f"cannot compress a {mat.shape[0]}x0 matrix (Kaldi asserts)")
    lo, hi = mat.min(), mat.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(_NON_FINITE)
    if lo == hi:  # a constant matrix: Kaldi widens the range in double, stores a float
        hi = _F32(np.float64(lo) + (1.0 + abs(np.float64(lo))))
    with np.errstate(over="ignore"):
        range_ = _F32(hi - lo)
    if not np.isfinite(range_):
        raise ValueError(f"cannot compress a matrix whose range [{lo}, {hi}] overflows float32")
    return _FORMAT[method], _F32(lo), range_


# ---------------------------------------------------------------- compression

def compress(mat, method=Method.AUTOMATIC):
    """The bytes of ``CompressedMatrix(mat, method).Write(os, binary=true)``, as a uint8 array.

    ``mat``: a 2-D float32 array (other dtypes are converted: Kaldi's copy-feats compresses
    float32). A matrix with no rows gives ``CM`` with an all-zero header (see ``_EMPTY``).
    """
    method = Method(method)  # ValueError for an unknown method
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    if mat.ndim != 2:
        raise ValueError(f"can only compress a matrix, not an array of shape {mat.shape}")
    rows, cols = mat.shape
    if rows == 0:
        return np.frombuffer(_EMPTY, np.uint8).copy()
    fmt, min_value, range_ = global_header(mat, method)
    if method in _FIXED_RANGE and not np.isfinite(mat).all():  # others saw min, max
        raise ValueError(_NON_FINITE)
    token = _TOKEN[fmt]
    head = token + struct.pack("<ffii", min_value, range_, rows, cols)
    body = {1: rows * cols + 8 * cols, 2: 2 * rows * cols, 3: rows * cols}[fmt]
    out = np.empty(len(head) + body, np.uint8)
    out[:len(head)] = np.frombuffer(head, np.uint8)
    data = out[len(head):]
    if fmt in (2, 3):
        kernel = float_to_uint16 if fmt == 2 else float_to_uint8
        flat, values = mat.reshape(-1), data.view("<u2" if fmt == 2 else np.uint8)
        for i in range(0, flat.size, _CHUNK):  # cache-sized pieces: the steps are many
            values[i:i + _CHUNK] = kernel(np, flat[i:i + _CHUNK], min_value, range_)
    else:
        _compress_columns(mat, min_value, range_, data[:8 * cols].view("<u2").reshape(cols, 4),
                          data[8 * cols:].reshape(cols, rows))
    return out


# Kaldi writes a matrix with no rows as "CM " and a default GlobalHeader: 20 bytes, the first
# four an uninitialised format field, while its reader takes 16. We write the 16 its reader
# reads (min 0, range 0, 0 rows, 0 cols), so the archive stays readable by Kaldi and kaldiio.
_EMPTY = b"CM " + bytes(16)


def _order_statistics(block, rows, work):
    """The order statistics ``column_codes`` takes, of each row of ``block`` (cols, rows), as
    Kaldi's ComputeColHeader picks them; and each row's min and max. ``work`` is scratch of
    the block's shape. A full SIMD sort is faster here than numpy's two partitions."""
    work[...] = block
    work.sort(axis=1)
    picks = [0, rows // 4, 3 * (rows // 4), rows - 1] if rows >= 5 else list(range(min(rows, 4)))
    return work[:, picks].T, work[:, 0], work[:, -1]


def _compress_columns(mat, min_value, range_, headers, codes):
    """Fill the per-column headers (cols, 4) and the column-major codes (cols, rows).

    Many rows: a block of columns at a time, copied out row by row (contiguous runs),
    transposed in cache, sorted for its order statistics and encoded column by column. Few
    rows: the order statistics from the transposed matrix, the encoding row by row (numpy's
    inner loops then run along the long axis), the codes transposed at the end."""
    rows, cols = mat.shape
    if rows < _FEW_ROWS:
        stats, lo, hi = _order_statistics(np.ascontiguousarray(mat.T), rows,
                                          np.empty((cols, rows), np.float32))
        u = column_codes(np, stats, min_value, range_)
        headers[...] = u.T
        p = uint16_to_float(np, u, min_value, range_)
        rowwise = np.empty((rows, cols), np.uint8)
        _float_to_char_block(mat, p, lo, hi, 1, rowwise, np.empty_like(rowwise),
                             np.empty_like(mat))
        codes[...] = rowwise.T
        return
    step = max(1, min(cols, _COLUMN_BLOCK_BYTES // (4 * rows)))
    rowwise, block, work, tmp = (np.empty(size, np.float32) for size in
                                 [(rows, step)] + [(step, rows)] * 3)
    piece = np.empty((step, rows), np.uint8)
    for c0 in range(0, cols, step):
        c1 = min(cols, c0 + step)
        n = c1 - c0
        x = block[:n]
        rowwise[:, :n] = mat[:, c0:c1]
        x[...] = rowwise[:, :n].T
        stats, lo, hi = _order_statistics(x, rows, work[:n])
        u = column_codes(np, stats, min_value, range_)
        headers[c0:c1] = u.T
        p = uint16_to_float(np, u, min_value, range_)
        _float_to_char_block(x, p, lo, hi, 0, codes[c0:c1], piece[:n], tmp[:n])


# The largest float32 below 0.5: trunc(float32(z + _HALF)) == trunc(double(z) + 0.5) for every
# float32 z in [0, 256] (checked exhaustively, tests/test_compress.py), where float32(z + 0.5)
# alone fails at z = 0.49999997.
_HALF = np.nextafter(_F32(0.5), _F32(0))
_MIN_NORMAL = np.finfo(np.float32).tiny
_FEW_ROWS = 64  # below this, encode row-major (see _compress_columns)


def _float_to_char_block(x, p, lo, hi, axis, out, piece, tmp):
    """FloatToChar of ``x``, whose columns run along ``axis`` (0: x is (cols, rows), 1: x is
    (rows, cols)), with percentiles ``p`` (4, cols); its columns lie in [lo, hi]. ``out``
    (uint8), ``piece`` (uint8) and ``tmp`` (float32) have x's shape.

    Where a column's percentiles are strictly increasing in float32, Kaldi's code equals the sum
    of the three pieces' clamped codes (below p25 the upper pieces clamp to 0, above it the
    lower ones to their full width), which needs no per-element selection; the division by
    ``d / 64`` (``d / 128``) equals the division by ``d`` times 64 (128) when ``d / 64`` is a
    normal float. Other columns take ``float_to_char``.
    """
    def per_column(v):  # broadcast a per-column vector against x
        return v[:, None] if axis == 0 else v[None, :]

    p0, p25, p75, p100 = p
    d1, d2, d3 = p25 - p0, p75 - p25, p100 - p75
    scale1, scale2 = d1 / _F32(64), d2 / _F32(128)
    span = np.maximum(hi, p100) - np.minimum(lo, p0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # |f * n| < 2**30: no int overflow in Kaldi's conversion, so clamping decides alone
        bound = span / np.minimum(np.minimum(scale1, scale2), d3 / _F32(63))
        fast = (scale1 >= _MIN_NORMAL) & (scale2 >= _MIN_NORMAL) & (d3 > 0) & (bound < 2.0**30)
        # each piece's code (a truncating cast of a value in [0, width]), summed as uint8
        for base, scale, width, first in ((p0, scale1, 64, True), (p25, scale2, 128, False),
                                          (p75, d3, 63, False)):
            np.subtract(x, per_column(base), out=tmp)
            np.divide(tmp, per_column(scale), out=tmp)
            if width == 63:
                np.multiply(tmp, _F32(63), out=tmp)
            np.add(tmp, _HALF, out=tmp)
            np.clip(tmp, _F32(0), _F32(width), out=tmp)
            if first:
                np.copyto(out, tmp, casting="unsafe")
            else:
                np.copyto(piece, tmp, casting="unsafe")
                np.add(out, piece, out=out)
        if not fast.all():
            slow = np.flatnonzero(~fast)
            q = [per_column(v[slow]) for v in p]
            codes = float_to_char(np, np.take(x, slow, axis=axis), *q)
            if axis == 0:
                out[slow] = codes
            else:
                out[:, slow] = codes


# ---------------------------------------------------------------- decompression

def decompress(obj):
    """The float32 matrix of one compressed object (``CM``/``CM2``/``CM3`` token first), as
    Kaldi's CompressedMatrix::CopyToMat computes it. Returns (matrix, bytes consumed)."""
    buf = memoryview(obj).cast("B")
    for fmt, token in _TOKEN.items():
        if bytes(buf[:len(token)]) == token:
            break
    else:
        raise ValueError(f"not a Kaldi compressed matrix: starts with {bytes(buf[:4])!r}")
    pos = len(token)
    min_value, range_, rows, cols = struct.unpack_from("<ffii", buf, pos)
    pos += 16
    if cols == 0:
        return np.zeros((0, 0), np.float32), pos
    min_value, range_ = _F32(min_value), _F32(range_)
    if fmt == 1:
        u = np.frombuffer(buf, "<u2", 4 * cols, pos).reshape(cols, 4).T
        c = np.frombuffer(buf, np.uint8, rows * cols, pos + 8 * cols).reshape(cols, rows)
        p = uint16_to_float(np, u, min_value, range_)[:, :, None]
        return char_to_float(np, c, p[0], p[1], p[2], p[3]).T.copy(), pos + 8 * cols + rows * cols
    dtype, scale = ("<u2", 1.0 / 65535.0) if fmt == 2 else (np.uint8, 1.0 / 255.0)
    q = np.frombuffer(buf, dtype, rows * cols, pos).reshape(rows, cols)
    increment = _F32(np.float64(range_) * scale)  # float increment = range * (1.0 / 65535.0)
    return min_value + q.astype(np.float32) * increment, pos + q.nbytes
