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

One algorithm, numpy on the CPU and torch on a GPU: the element-wise kernels take the array
module as ``xp`` (numpy, or torch through ``_TorchNamespace``). ``compress`` given a GPU tensor
runs them on its device (``compress_on_device``: a sort per column, the kernels, and only the
header's two floats and the bytes copied to the host); numpy's driver adds cache blocking and
works in place. torch is imported only when a tensor is given.
"""

import enum
import struct
import sys

import numpy as np

try:  # the per-column work of CM, compiled (setup.py); numpy computes the same bytes without it
    from speech_reps.kaldi import _compress_kernels as _kernels
except ImportError:  # not built: no C compiler where the package was installed
    _kernels = None


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
_INT32_MAX = 2**31 - 1
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


def data_format(method, rows):
    """Kaldi's DataFormat for ``method`` on a matrix of ``rows`` rows: 1 (CM), 2 (CM2), 3 (CM3)."""
    method = Method(method)
    if method == Method.AUTOMATIC:
        method = Method.SPEECH_FEATURE if rows > 8 else Method.TWO_BYTE_AUTO
    return _FORMAT[method]


def global_range(mat, lo, hi):
    """(min_value, range) of ComputeGlobalHeader from the smallest and largest element (``lo``,
    ``hi``) of ``mat`` (an array or a tensor)."""
    lo, hi = _F32(lo), _F32(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(_NON_FINITE)
    if lo == 0 or hi == 0:  # MatrixBase::Min/Max keep the first of equal values (-0.0 == 0.0)
        lo, hi = (_first_zero(mat) if v == 0 else v for v in (lo, hi))
    if lo == hi:  # a constant matrix: Kaldi widens the range in double, stores a float
        hi = _F32(np.float64(lo) + (1.0 + abs(np.float64(lo))))
    with np.errstate(over="ignore"):
        range_ = _F32(hi - lo)
    if not np.isfinite(range_):
        raise ValueError(f"cannot compress a matrix whose range [{lo}, {hi}] overflows float32")
    return lo, range_


def _first_zero(mat):
    """The first zero of ``mat`` in row-major order, with its sign (the header's min_value bytes
    show it): a pass over the matrix, taken only where an extreme is zero."""
    flat = mat.reshape(-1)
    if is_tensor(flat):  # argmax: the first of equal maxima, on torch too
        return _F32(flat[int((flat == 0).to(_torch().uint8).argmax())].item())
    return _F32(flat[np.argmax(flat == 0)])


def global_header(mat, method):
    """(format, min_value, range) of ComputeGlobalHeader; ``mat`` float32 with rows."""
    method = Method(method)
    fmt = data_format(method, mat.shape[0])
    if method in _FIXED_RANGE:
        min_value, range_ = _FIXED_RANGE[method]
        return fmt, _F32(min_value), _F32(range_)
    if mat.size == 0:
        raise ValueError(f"cannot compress a {mat.shape[0]}x0 matrix (Kaldi asserts)")
    return (fmt, *global_range(mat, mat.min(), mat.max()))


def _header(fmt, min_value, range_, rows, cols):
    return _TOKEN[fmt] + struct.pack("<ffii", min_value, range_, rows, cols)


def _body_size(fmt, rows, cols):
    return {1: rows * cols + 8 * cols, 2: 2 * rows * cols, 3: rows * cols}[fmt]


def _picks(rows):
    """The sorted rows whose values ComputeColHeader takes: 0, n/4, 3n/4, n-1 (n >= 5), else
    all of them (up to 4)."""
    return [0, rows // 4, 3 * (rows // 4), rows - 1] if rows >= 5 else list(range(min(rows, 4)))


# ---------------------------------------------------------------- compression

def compress(mat, method=Method.AUTOMATIC):
    """The bytes of ``CompressedMatrix(mat, method).Write(os, binary=true)``, as a uint8 array.

    ``mat``: a 2-D float32 array (other dtypes are converted: Kaldi's copy-feats compresses
    float32), or a 2-D ``torch.Tensor``: one on a GPU (any device but the CPU) is compressed
    there (``compress_on_device``) and only the bytes come to the host; one on the CPU is
    compressed by numpy, without a copy (torch's CPU sort is far slower). A matrix with no rows
    gives ``CM`` with an all-zero header (see ``_EMPTY``).
    """
    method = Method(method)  # ValueError for an unknown method
    if is_tensor(mat):
        if mat.device.type != "cpu":
            return compress_on_device(mat, method)
        mat = mat.detach().to(_torch().float32).numpy()  # float32: no copy
    mat = np.require(mat, np.float32, ["C", "A"])  # contiguous and aligned (the kernels read floats)
    if mat.ndim != 2:
        raise ValueError(f"can only compress a matrix, not an array of shape {mat.shape}")
    rows, cols = mat.shape
    if max(rows, cols) > _INT32_MAX:
        raise ValueError(f"cannot compress a {rows}x{cols} matrix: Kaldi's header holds int32 sizes")
    if rows == 0:
        return np.frombuffer(_EMPTY, np.uint8).copy()
    if data_format(method, rows) == 1 and cols > 0:
        return _compress_speech_feature(mat)
    fmt, min_value, range_ = global_header(mat, method)
    if method in _FIXED_RANGE and not np.isfinite(mat).all():  # others saw min, max
        raise ValueError(_NON_FINITE)
    head = _header(fmt, min_value, range_, rows, cols)
    out = np.empty(len(head) + _body_size(fmt, rows, cols), np.uint8)
    out[:len(head)] = np.frombuffer(head, np.uint8)
    kernel = float_to_uint16 if fmt == 2 else float_to_uint8
    flat, values = mat.reshape(-1), out[len(head):].view("<u2" if fmt == 2 else np.uint8)
    for i in range(0, flat.size, _CHUNK):  # cache-sized pieces: the steps are many
        values[i:i + _CHUNK] = kernel(np, flat[i:i + _CHUNK], min_value, range_)
    return out


# Kaldi writes a matrix with no rows as "CM " and a default GlobalHeader: 20 bytes, the first
# four an uninitialised format field, while its reader takes 16. We write the 16 its reader
# reads (min 0, range 0, 0 rows, 0 cols), so the archive stays readable by Kaldi and kaldiio.
_EMPTY = b"CM " + bytes(16)


def is_tensor(mat):
    """A torch tensor, told without importing torch (it is imported only by those who use it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(mat, torch.Tensor)


def _torch():
    import torch
    return torch


def _compress_speech_feature(mat):
    """The CM format of ``mat`` (float32, rows x cols, both > 0), in two passes: the order
    statistics of each column, whose extremes give the global header and the percentile codes;
    then FloatToChar of every element, written column by column. Both passes compiled
    (``_compress_kernels``, 1.5-2x numpy's speed) from 5 rows up where the module was built,
    else in numpy (``_order_stats``, ``_float_to_char``)."""
    rows, cols = mat.shape
    compiled = _kernels is not None and rows >= 5
    if compiled:
        stats = np.empty((4, cols), np.float32)
        if not _kernels.column_stats(mat, stats, rows, cols):
            raise ValueError(_NON_FINITE)
        columns = None
    else:
        stats, columns = _order_stats(mat)
    lo, hi = stats[0], stats[-1]  # each column's min and max
    min_value, range_ = global_range(mat, lo.min(), hi.max())  # NaN: ValueError
    head = _header(1, min_value, range_, rows, cols)
    out = np.empty(len(head) + _body_size(1, rows, cols), np.uint8)
    out[:len(head)] = np.frombuffer(head, np.uint8)
    u = column_codes(np, stats, min_value, range_)
    out[len(head):len(head) + 8 * cols].view("<u2").reshape(cols, 4)[...] = u.T
    codes = out[len(head) + 8 * cols:].reshape(cols, rows)
    p = uint16_to_float(np, u, min_value, range_)
    if compiled:
        _kernels.float_to_char(mat, np.ascontiguousarray(p, np.float32), codes, rows, cols)
    else:
        _float_to_char(mat, columns, p, lo, hi, codes)
    return out


def _order_stats(mat):
    """numpy's order statistics of ``mat``'s columns: (k, cols), the sorted rows ``_picks``
    names, and the transposed matrix (cols, rows). A block of columns at a time is copied out
    row by row (contiguous runs), transposed in cache into ``columns``, copied and sorted."""
    rows, cols = mat.shape
    picks = _picks(rows)  # the first is row 0, the last row n - 1: the column's min and max
    picked = np.empty((cols, len(picks)), np.float32)
    columns = np.empty((cols, rows), np.float32)
    step = max(1, min(cols, _COLUMN_BLOCK_BYTES // (4 * rows)))
    rowwise, work = np.empty((rows, step), np.float32), np.empty((step, rows), np.float32)
    for c0 in range(0, cols, step):
        c1 = min(cols, c0 + step)
        n = c1 - c0
        rowwise[:, :n] = mat[:, c0:c1]
        columns[c0:c1] = rowwise[:, :n].T
        w = work[:n]
        w[...] = columns[c0:c1]
        w.sort(axis=1)  # a full SIMD sort is faster here than numpy's partitions (NaN last)
        np.take(w, picks, axis=1, out=picked[c0:c1])
    return picked.T, columns


def _float_to_char(mat, columns, p, lo, hi, codes):
    """numpy's FloatToChar of ``columns`` (the transposed ``mat``) into ``codes`` (cols, rows)
    with the decoded percentiles ``p`` (4, cols): a block of columns at a time. Few rows: row
    by row (numpy's inner loops then run along the long axis), the codes transposed at the end."""
    rows, cols = mat.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        bases, scales, fast = char_scales(np, p, lo, hi)
        if rows < _FEW_ROWS:
            rowwise = np.empty((rows, cols), np.uint8)
            _float_to_char_block(mat, bases, scales, rowwise, np.empty_like(rowwise),
                                 np.empty_like(mat), axis=1)
            codes[...] = rowwise.T
        else:
            bases, scales = [v[:, None] for v in bases], [v[:, None] for v in scales]
            step = max(1, min(cols, _CHAR_BLOCK_BYTES // (4 * rows)))
            piece, tmp = np.empty((step, rows), np.uint8), np.empty((step, rows), np.float32)
            for c0 in range(0, cols, step):
                c1 = min(cols, c0 + step)
                _float_to_char_block(columns[c0:c1], [v[c0:c1] for v in bases],
                                     [v[c0:c1] for v in scales], codes[c0:c1],
                                     piece[:c1 - c0], tmp[:c1 - c0], axis=0)
        if not fast.all():
            slow = np.flatnonzero(~fast)
            codes[slow] = float_to_char(np, mat[:, slow].T, *(v[slow, None] for v in p))


# The largest float32 below 0.5: trunc(float32(z + _HALF)) == trunc(double(z) + 0.5) for every
# float32 z in [0, 256] (checked exhaustively, tests/test_compress.py), where float32(z + 0.5)
# alone fails at z = 0.49999997.
_HALF = np.nextafter(_F32(0.5), _F32(0))
_MIN_NORMAL = np.finfo(np.float32).tiny
_FEW_ROWS = 64  # below this, encode row-major (see _compress_speech_feature)
_CHAR_BLOCK_BYTES = 1 << 19  # float32 bytes of one block of columns in FloatToChar (in L2)
_WIDTHS = (64, 128, 63)  # codes of FloatToChar's three pieces
# numpy's clip ufunc itself: np.clip's Python wrapper costs a fifth of the clipping in cache
_clip = getattr(getattr(np, "_core", None), "umath", np).clip


def char_scales(xp, p, lo, hi):
    """The three pieces of FloatToChar of each column as sums (see ``float_to_char_fast``):
    their bases (p0, p25, p75) and divisors (d1 / 64, d2 / 128, d3), and whether the column can
    take them: its percentiles ``p`` (4, cols) strictly increasing in float32, the divisions by
    ``d / 64`` and ``d / 128`` equal to the divisions by ``d`` times 64 and 128 (``d / 64`` a
    normal float), and ``|f * n| < 2**30`` for its values in [lo, hi] (no int overflow in
    Kaldi's conversion: clamping decides alone)."""
    p0, p25, p75, p100 = p[0], p[1], p[2], p[3]
    d1, d2, d3 = p25 - p0, p75 - p25, p100 - p75
    scale1, scale2 = d1 / 64.0, d2 / 128.0
    span = xp.maximum(hi, p100) - xp.minimum(lo, p0)
    bound = span / xp.minimum(xp.minimum(scale1, scale2), d3 / 63.0)
    fast = (scale1 >= _MIN_NORMAL) & (scale2 >= _MIN_NORMAL) & (d3 > 0) & (bound < 2.0**30)
    return (p0, p25, p75), (scale1, scale2, d3), fast


def float_to_char_fast(xp, x, bases, scales):
    """FloatToChar of ``x`` where ``char_scales`` says a column can take it (its arguments
    broadcast against ``x``): Kaldi's code is the sum of the three pieces' clamped codes (below
    p25 the upper pieces clamp to 0, above it the lower ones to their full width), so no
    per-element selection; each piece ``int(f * n + 0.5)`` as a truncating cast of
    ``f * n + _HALF`` in float32 (see ``_HALF``)."""
    codes = None
    for base, scale, width in zip(bases, scales, _WIDTHS):
        z = (x - base) / scale
        if width == 63:
            z = z * 63.0
        piece = xp.astype(xp.clip(z + float(_HALF), 0.0, float(width)), xp.uint8)
        codes = piece if codes is None else codes + piece
    return codes


def _float_to_char_block(x, bases, scales, out, piece, tmp, axis):
    """``float_to_char_fast`` of ``x`` into ``out`` (uint8), in place: ``piece`` (uint8) and
    ``tmp`` (float32) have x's shape; x's columns run along ``axis`` (0: x is (cols, rows), the
    vectors (cols, 1); 1: x is (rows, cols), the vectors (cols,))."""
    for base, scale, width in zip(bases, scales, _WIDTHS):
        np.subtract(x, base, out=tmp)
        np.divide(tmp, scale, out=tmp)
        if width == 63:
            np.multiply(tmp, _F32(63), out=tmp)
        np.add(tmp, _HALF, out=tmp)
        _clip(tmp, _F32(0), _F32(width), out=tmp)
        if width == 64:
            np.copyto(out, tmp, casting="unsafe")
        else:
            np.copyto(piece, tmp, casting="unsafe")
            np.add(out, piece, out=out)


# ---------------------------------------------------------------- on a torch device

def compress_on_device(t, method=Method.AUTOMATIC):
    """``compress`` of a 2-D torch tensor, computed on its device (a CPU tensor too: the tests
    check the GPU's algorithm there) by the kernels above, torch standing in for numpy
    (``_TorchNamespace``); only the header's two floats and the bytes come to the host. Other
    dtypes than float32 (bfloat16, float16: exactly) are converted first, as numpy's path does.
    The same bytes as numpy's: the kernels are IEEE float32/float64 arithmetic, element by
    element, and the order statistics a sort's."""
    import torch

    method = Method(method)
    if t.ndim != 2:
        raise ValueError(f"can only compress a matrix, not an array of shape {tuple(t.shape)}")
    t = t.detach().to(torch.float32).contiguous()
    rows, cols = t.shape
    if t.numel() == 0:  # no data to move: numpy's answer (or refusal)
        return compress(np.empty((rows, cols), np.float32), method)
    xp = _TorchNamespace(torch)
    fmt = data_format(method, rows)
    if fmt == 1:
        columns = t.T.contiguous()
        ordered = torch.sort(columns, dim=1).values  # NaN last, as numpy's
        stats, lo, hi = ordered[:, _picks(rows)].T, ordered[:, 0], ordered[:, -1]
        extremes = torch.stack([lo.min(), hi.max()])
    elif method in _FIXED_RANGE:
        if not bool(torch.isfinite(t).all()):
            raise ValueError(_NON_FINITE)
        extremes = None
        min_value, range_ = (_F32(v) for v in _FIXED_RANGE[method])
    else:
        extremes = torch.stack(torch.aminmax(t))
    if extremes is not None:
        min_value, range_ = global_range(t, *extremes.cpu().numpy())
    head = _header(fmt, min_value, range_, rows, cols)
    mn, rg = (torch.tensor(v, dtype=torch.float32, device=t.device) for v in (min_value, range_))
    if fmt == 1:
        u = column_codes(xp, stats, mn, rg)  # int32 on torch (see _TorchNamespace)
        p = uint16_to_float(xp, u, mn, rg)
        bases, scales, fast = char_scales(xp, p, lo, hi)
        codes = float_to_char_fast(xp, columns, *([v[:, None] for v in w] for w in (bases, scales)))
        if not bool(fast.all()):
            slow = torch.nonzero(~fast).flatten()
            codes[slow] = float_to_char(xp, columns[slow], *(v[slow, None] for v in p))
        body = torch.cat([_uint16_bytes(torch, u.T), codes.reshape(-1)])
    elif fmt == 2:
        body = _uint16_bytes(torch, float_to_uint16(xp, t, mn, rg))
    else:
        body = float_to_uint8(xp, t, mn, rg).reshape(-1)
    out = np.empty(len(head) + body.numel(), np.uint8)
    out[:len(head)] = np.frombuffer(head, np.uint8)
    torch.from_numpy(out[len(head):]).copy_(body)  # the one copy to the host: bytes
    return out


def compress_many(mats, method=Method.AUTOMATIC):
    """``[compress(m, method) for m in mats]``, the same bytes, with the matrices on a GPU
    compressed together (``compress_batch_on_device``): a batch's few dozen kernels and three
    synchronisations in place of each matrix's. Others (host arrays, CPU tensors, matrices of
    up to 8 rows or with no columns, other methods) one by one."""
    method = Method(method)
    out = [None] * len(mats)
    together = [i for i, m in enumerate(mats)
                if is_tensor(m) and m.device.type != "cpu" and m.ndim == 2 and m.shape[1] > 0
                and data_format(method, m.shape[0]) == 1 and m.shape[0] >= 5]
    for group in _groups([mats[i] for i in together], together):
        for i, packed in zip(group, compress_batch_on_device([mats[i] for i in group])):
            out[i] = packed
    return [compress(m, method) if packed is None else packed for m, packed in zip(mats, out)]


_BATCH_ELEMENTS = 1 << 27  # padded float32 elements compressed at once (0.5 GB; a few times that in temporaries)


def _groups(mats, index):
    """``index`` cut into runs of consecutive matrices of the same column count whose padded
    size (count x longest x columns) stays within _BATCH_ELEMENTS."""
    group, longest, cols = [], 0, None
    for m, i in zip(mats, index):
        rows = max(longest, m.shape[0])
        if group and (m.shape[1] != cols or (len(group) + 1) * rows * cols > _BATCH_ELEMENTS):
            yield group
            group, rows = [], m.shape[0]
        group.append(i)
        longest, cols = rows, m.shape[1]
    if group:
        yield group


def compress_batch_on_device(mats):
    """The CM format (``Method.SPEECH_FEATURE``; ``AUTOMATIC`` above 8 rows) of several 2-D
    tensors on one device with the same number of columns and at least 5 rows each, computed
    together: the same bytes as ``compress_on_device`` of each (a CPU tensor too, for the tests).

    The matrices are padded with +Inf after their rows and sorted per column as one
    (matrices, columns, rows) tensor: each matrix's order statistics are its first rows there.
    Each one's percentiles, global header and FloatToChar codes follow from the same element-wise
    kernels, broadcast over the matrices; the bytes of all of them (headers too) are gathered
    on the device and cross to the host in one copy. A matrix with NaN or Inf is refused."""
    import torch

    xp = _TorchNamespace(torch)
    device = mats[0].device
    rows = [m.shape[0] for m in mats]
    cols = mats[0].shape[1]
    padded = torch.nn.utils.rnn.pad_sequence([m.detach().to(torch.float32) for m in mats], batch_first=True,
                                             padding_value=float("inf"))
    columns = padded.transpose(1, 2).contiguous()  # (B, cols, longest)
    del padded  # temporaries go as soon as used: this runs beside the model on its GPU
    ordered = torch.sort(columns, dim=2).values  # NaN after the padding's +Inf
    picks = torch.tensor([_picks(n) for n in rows], device=device)  # (B, 4): n >= 5
    stats = ordered.gather(2, picks[:, None, :].expand(-1, cols, -1)).permute(2, 0, 1)  # (4, B, cols)
    del ordered
    lo, hi = stats[0], stats[3]  # each matrix's columns' min and max (rows 0 and n - 1)
    extremes = torch.stack([lo.min(dim=1).values, hi.max(dim=1).values]).cpu().numpy()
    headers, ranges = [], []
    for b, n in enumerate(rows):
        min_value, range_ = global_range(mats[b], *extremes[:, b])  # NaN, Inf: ValueError
        headers.append(_header(1, min_value, range_, n, cols))
        ranges.append((min_value, range_))
    mn, rg = torch.tensor(ranges, dtype=torch.float32, device=device).T[:, :, None]  # (B, 1) each
    u = column_codes(xp, stats, mn, rg)  # (4, B, cols) int32 on torch
    p = uint16_to_float(xp, u, mn, rg)
    bases, scales, fast = char_scales(xp, p, lo, hi)  # (B, cols)
    codes = float_to_char_fast(xp, columns, *([v[:, :, None] for v in w] for w in (bases, scales)))
    if not bool(fast.all()):
        b, c = torch.nonzero(~fast, as_tuple=True)
        codes[b, c] = float_to_char(xp, columns[b, c], *(v[b, c][:, None] for v in p))
    head = torch.from_numpy(np.frombuffer(b"".join(headers), np.uint8).copy()).to(device)
    col_headers = u.permute(1, 2, 0).contiguous().to(torch.int16).view(torch.uint8)  # (B, cols, 8): <u2 each
    pieces, at, sizes = [], 0, []
    for b, n in enumerate(rows):
        pieces += [head[at:at + len(headers[b])], col_headers[b].reshape(-1), codes[b, :, :n].reshape(-1)]
        at += len(headers[b])
        sizes.append(len(headers[b]) + _body_size(1, n, cols))
    flat = _bytes_to_host(torch, torch.cat(pieces))  # the one copy to the host: every matrix's bytes
    return np.split(flat, np.cumsum(sizes)[:-1])


def _bytes_to_host(torch, t):
    """A device tensor's bytes as a host array, copied into page-locked memory: a GPU copies
    into pageable memory at a fraction of the bus's rate (1.3 GB/s against 53 GB/s measured on
    an H200), which made that copy most of the writer's time in a compressed DeCoAR job. The
    page-locked block goes back to torch's cache when the arrays viewing it are dropped."""
    if t.device.type != "cuda":
        return t.cpu().numpy()
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t)  # synchronous: the bytes are there on return
    return host.numpy()


def _uint16_bytes(torch, values):
    """Little-endian uint16 bytes of int32 values in [0, 65535] (torch has no uint16 arithmetic):
    the low 16 bits as int16, viewed as bytes."""
    assert sys.byteorder == "little"
    return values.contiguous().to(torch.int16).view(torch.uint8).reshape(-1)


class _TorchNamespace:
    """The few array functions the kernels use (numpy's names), for torch. uint16 is int32 here
    (values stay in [0, 65535]); no division by a Python number other than a power of two reaches
    a CUDA tensor here, since CUDA divides by such a scalar as a multiplication by its reciprocal."""

    def __init__(self, torch):
        self._torch = torch
        self.float32, self.float64, self.int32 = torch.float32, torch.float64, torch.int32
        self.uint8, self.uint16 = torch.uint8, torch.int32
        self.where, self.trunc, self.stack = torch.where, torch.trunc, torch.stack

    def astype(self, x, dtype):
        return x.to(dtype)

    def clip(self, x, lo, hi):
        return self._torch.clamp(x, lo, hi)

    def minimum(self, a, b):
        return self._torch.minimum(a, b) if isinstance(b, self._torch.Tensor) else self._torch.clamp(a, max=b)

    def maximum(self, a, b):
        return self._torch.maximum(a, b) if isinstance(b, self._torch.Tensor) else self._torch.clamp(a, min=b)


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
