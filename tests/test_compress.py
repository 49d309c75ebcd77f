"""Our Kaldi compressed matrix against real Kaldi's copy-feats --compress=true output."""

import hashlib
import io
import math
import struct
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from speech_reps.kaldi import compress as cm
from speech_reps.kaldi.writer import FeatureWriter

DATA = Path(__file__).parent / "data" / "kaldi_golden"
GOLDEN = DATA / "compressed"
METHODS = range(1, 8)


@pytest.fixture(params=["compiled", "numpy"])
def implementation(request, monkeypatch):
    """Each test that takes it runs twice: with the compiled per-column kernels
    (speech_reps/kaldi/_compress_kernels.c) and with numpy's, which stand in where the module
    was not built."""
    if request.param == "numpy":
        monkeypatch.setattr(cm, "_kernels", None)
    return request.param


def test_the_compiled_kernels_are_built():
    assert cm._kernels is not None, (
        "speech_reps.kaldi._compress_kernels was not built: `pip install -e .` needs a C compiler "
        "and Python's headers (make sysdeps installs gcc)")


def ark_objects(raw):
    """[(key, object bytes)] of a binary ark of compressed (CM/CM2/CM3) or FM matrices."""
    out, pos = [], 0
    while pos < len(raw):
        space = raw.index(b" ", pos)
        key, pos = raw[pos:space].decode(), space + 1
        assert raw[pos:pos + 2] == b"\0B"
        pos += 2
        if raw[pos:pos + 3] == b"FM ":
            rows, cols = struct.unpack_from("<xixi", raw, pos + 3)
            size = 13 + 4 * rows * cols
        else:
            size = cm.decompress(raw[pos:])[1]
        out.append((key, raw[pos:pos + size]))
        pos += size
    return out


def fm_object(mat):
    """Kaldi's binary float matrix object ("FM ") of ``mat``."""
    rows, cols = mat.shape
    return b"FM \x04" + struct.pack("<i", rows) + b"\x04" + struct.pack("<i", cols) + \
        np.ascontiguousarray(mat, "<f4").tobytes()


def ark(entries):
    return b"".join(key.encode() + b" \0B" + bytes(obj) for key, obj in entries)


@pytest.fixture(scope="module")
def fbank80():
    return list(kaldiio.load_ark(str(DATA / "fbank80.ark")))


@pytest.fixture(scope="module")
def wide():
    return list(kaldiio.load_ark(str(GOLDEN / "wide.ark")))


@pytest.fixture(scope="module")
def wide_sha256():
    table = {}
    for line in (GOLDEN / "wide_sha256.txt").read_text().splitlines():
        name, key, size, digest = line.split()
        table[name, key] = (int(size), digest)
    return table


@pytest.mark.parametrize("method", METHODS)
def test_fbank80_archive_is_byte_identical_to_kaldi(fbank80, method, implementation):
    golden = (GOLDEN / f"fbank80_method{method}.ark").read_bytes()
    ours = ark((key, cm.compress(mat, method)) for key, mat in fbank80)
    assert len(ours) == len(golden)
    diff = np.flatnonzero(np.frombuffer(ours, np.uint8) != np.frombuffer(golden, np.uint8))
    assert diff.size == 0, f"{diff.size} bytes differ, first at {diff[:5]}"


@pytest.mark.parametrize("method", METHODS)
def test_wide_matrices_are_byte_identical_to_kaldi(wide, wide_sha256, method, implementation):
    """1, 5, 8, 9, 17, 200 rows of 2048 columns, constant columns, a 1e4 outlier."""
    name = f"wide_method{method}.ark"
    for key, mat in wide:
        obj = cm.compress(mat, method).tobytes()
        assert (len(obj), hashlib.sha256(obj).hexdigest()) == wide_sha256[name, key], key


def test_format_follows_the_method(wide):
    tokens = {key: {m: cm.compress(mat, m)[:4].tobytes() for m in METHODS} for key, mat in wide}
    assert tokens["wide008"][1] == b"CM2 " and tokens["wide009"][1][:3] == b"CM "
    for key in tokens:
        assert tokens[key][2][:3] == b"CM " and tokens[key][3] == tokens[key][4] == b"CM2 "
        assert tokens[key][5] == tokens[key][6] == tokens[key][7] == b"CM3 "


def test_decompression_equals_kaldis(fbank80, wide, wide_sha256, implementation):
    golden = dict(kaldiio.load_ark(str(GOLDEN / "fbank80_method1_decompressed.ark")))
    objects = ark_objects((GOLDEN / "fbank80_method1.ark").read_bytes())
    for key, obj in objects:
        mat, size = cm.decompress(obj)
        assert size == len(obj)
        assert mat.dtype == np.float32 and mat.tobytes() == golden[key].tobytes(), key
    for key, mat in wide:
        back = fm_object(cm.decompress(cm.compress(mat, 1))[0])
        size, digest = wide_sha256["wide_method1_decompressed.ark", key]
        assert (len(back), hashlib.sha256(back).hexdigest()) == (size, digest), key


def test_decompression_of_every_format_is_close(fbank80):
    for key, mat in fbank80:
        span = mat.max() - mat.min()
        for method, tolerance in ((2, 0.02), (3, 1e-4), (5, 0.005)):
            back, _ = cm.decompress(cm.compress(mat, method))
            assert back.shape == mat.shape
            assert np.abs(back - mat).max() <= tolerance * span, (key, method)


# ---------------------------------------------------------------- a scalar transliteration
# Kaldi's compressed-matrix.cc semantics one element at a time (float32 via np.float32, double
# via Python float), to check the vectorised code where no golden archive reaches.

F = np.float32


def _c_int(v):
    return math.trunc(v) if -2147483649.0 < v < 2147483648.0 else -2147483648


def _to_uint(v, lo, rng, n):
    f = F(F(v) - lo) / rng
    f = F(1) if f > 1.0 else (F(0) if f < 0.0 else f)
    return _c_int(float(F(f * F(n))) + 0.499) % (n + 1)


def _uint16_to_float(u, lo, rng):
    return F(lo + F(F(rng * F(1.52590218966964e-05)) * F(u)))


def _char(x, p0, p25, p75, p100):
    if x < p25:
        lo, hi, base, top, n = 0, 64, p0, p25, 64
    elif x < p75:
        lo, hi, base, top, n = 64, 192, p25, p75, 128
    else:
        lo, hi, base, top, n = 192, 255, p75, p100, 63
    with np.errstate(all="ignore"):
        f = F(F(x - base) / F(top - base))
        ans = lo + _c_int(float(F(f * F(n))) + 0.5)
    return min(max(ans, lo), hi)


def _kaldi_min_max(mat):
    """MatrixBase::Min and Max: the first of equal values in row-major order (-0.0 == 0.0)."""
    flat = mat.reshape(-1)
    lo = hi = flat[0]
    for v in flat[1:]:
        lo, hi = (v if v < lo else lo), (v if v > hi else hi)
    return F(lo), F(hi)


def reference_compress(mat, method):
    mat = np.asarray(mat, F)
    rows, cols = mat.shape
    if method == 1:
        method = 2 if rows > 8 else 3
    fmt = {2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3}[method]
    if method in (4, 6, 7):
        lo, rng = {4: (F(-32768), F(65535)), 6: (F(0), F(255)), 7: (F(0), F(1))}[method]
    else:
        lo, hi = _kaldi_min_max(mat)
        if lo == hi:
            hi = F(float(lo) + (1.0 + abs(float(lo))))
        rng = F(hi - lo)
    out = [{1: b"CM ", 2: b"CM2 ", 3: b"CM3 "}[fmt], struct.pack("<ffii", lo, rng, rows, cols)]
    if fmt == 2:
        out.append(struct.pack(f"<{rows * cols}H", *(_to_uint(v, lo, rng, 65535) for v in mat.flat)))
    elif fmt == 3:
        out.append(bytes(_to_uint(v, lo, rng, 255) for v in mat.flat))
    else:
        heads, codes = [], []
        for c in range(cols):
            s = sorted(mat[:, c])
            picks = [0, rows // 4, 3 * (rows // 4), rows - 1] if rows >= 5 else [0, 1, 2, 3]
            u = [_to_uint(s[i], lo, rng, 65535) if i < rows else None for i in picks]
            p = [min(u[0], 65532)]
            for i, cap in ((1, 65533), (2, 65534), (3, 65535)):
                p.append(p[-1] + 1 if u[i] is None else min(max(u[i], p[-1] + 1), cap))
            heads.append(struct.pack("<4H", *p))
            pf = [_uint16_to_float(v, lo, rng) for v in p]
            codes.append(bytes(_char(x, *pf) for x in mat[:, c]))
        out += heads + codes
    return b"".join(out)


def _tricky_matrices():
    rng = np.random.default_rng(16)
    for rows in range(1, 13):
        yield f"normal{rows}", rng.normal(size=(rows, 7))
        yield f"ties{rows}", rng.integers(-2, 3, size=(rows, 5)) * 0.25
    yield "constant", np.full((10, 4), -3.5)
    yield "zeros", np.zeros((9, 3))
    yield "constcols", np.concatenate([np.full((12, 2), 7.0), rng.normal(size=(12, 3))], 1)
    yield "outlier", np.concatenate([rng.normal(size=(30, 6)), np.full((1, 6), 1e4)])
    yield "offset", 1e6 + rng.normal(size=(20, 6)) * 1e-3  # percentiles collide in float32
    yield "offset_small", 3e4 + rng.integers(0, 3, size=(7, 6)) * 1e-3
    for rows in (30, 80):  # a few float32 steps: both layouts of the encoder (see _FEW_ROWS)
        yield f"collide{rows}", 1e6 + rng.integers(0, 4, size=(rows, 6)) * 0.0625
    yield "normal70", rng.normal(size=(70, 9))
    yield "tiny", rng.normal(size=(15, 4)) * 1e-30
    yield "wide_range", rng.normal(size=(16, 4)) * 1e30
    yield "huge_values", np.array([[1.5e38, -1.5e38], [1.0, 2.0], [0.0, 5.0]] * 4)
    yield "pcm", rng.integers(-40000, 40000, size=(11, 5)).astype(float)
    yield "unit", rng.uniform(-0.5, 1.5, size=(11, 5))
    # the header's min or max a zero: Kaldi keeps the first zero, whatever its sign
    signed = np.abs(rng.normal(size=(12, 5)))
    signed[3, 1], signed[7, 4], signed[9, 0] = -0.0, 0.0, -0.0
    yield "zero_min_negative_first", signed
    yield "zero_min_positive_first", np.where(signed == 0, np.float32(0) * np.array([[1.0], [-1.0]] * 6), signed)
    yield "zero_max_negative_first", -signed


@pytest.mark.parametrize("name,mat", list(_tricky_matrices()))
def test_edge_cases_match_kaldis_arithmetic(name, mat, implementation):
    """1 to 12 rows (the n < 5 branch, kAutomaticMethod's switch at 8), ties, constant
    columns and matrices, outliers, percentiles that collide in float32, out-of-range values
    for the fixed-range methods."""
    for method in METHODS:
        assert cm.compress(mat, method).tobytes() == reference_compress(mat, method), method


def _selection_matrices():
    """What the compiled order statistics (buckets of the values, narrowed until few) and
    tiles of FloatToChar meet: many ties, one bucket holding most values, ranges too small or
    too large for a float scale, rows and columns that fill no tile evenly, a long matrix."""
    rng = np.random.default_rng(11)
    yield "speech_like", np.tanh(rng.normal(0, 1.5, (1000, 2048)))
    yield "ties", rng.integers(0, 3, (333, 70)).astype(float)
    yield "mostly_zero", np.where(rng.random((500, 65)) < 0.9, 0.0, rng.normal(size=(500, 65)))
    clustered = 1 + rng.normal(size=(400, 9)) * 1e-6
    clustered[::50] = 1e3  # an outlier: the other values all fall in the lowest bucket
    yield "clustered", clustered
    yield "tiny_range", 1 + rng.integers(0, 2, (64, 10)) * np.float32(2.0 ** -23)
    yield "subnormal", rng.normal(size=(100, 20)) * 1e-44
    yield "near_float_max_range", np.concatenate([np.full((1, 3), -1.6e38), np.full((1, 3), 1.6e38),
                                                  rng.normal(size=(50, 3))])
    yield "odd_shape", rng.normal(size=(71, 1027))
    yield "five_rows", rng.normal(size=(5, 130))
    yield "long", rng.normal(size=(70000, 3))


@pytest.mark.parametrize("name,mat", list(_selection_matrices()))
def test_compiled_kernels_equal_numpy(name, mat, monkeypatch):
    mat = np.asarray(mat, np.float32)
    compiled = [cm.compress(mat, method).tobytes() for method in (1, 2)]
    monkeypatch.setattr(cm, "_kernels", None)
    assert compiled == [cm.compress(mat, method).tobytes() for method in (1, 2)]


def _half_up_is_exact(z):
    """Our float32 rounding step against Kaldi's: int(double(z) + 0.5)."""
    return np.array_equal(np.trunc(z + cm._HALF), np.trunc(z.astype(np.float64) + 0.5))


def test_float32_rounding_step_near_every_half():
    """Every float32 within 2**14 steps of k + 0.5 and of k, k = 0..256 (fast)."""
    around = np.arange(-2**14, 2**14, dtype=np.int64)
    centres = np.concatenate([np.arange(257) + 0.5, np.arange(257)]).astype(np.float32)
    bits = (centres.view(np.int32)[:, None] + around).ravel()
    z = bits[bits >= 0].astype(np.int32).view(np.float32)
    assert _half_up_is_exact(z)
    assert not np.array_equal(np.trunc(z + np.float32(0.5)), np.trunc(z.astype(np.float64) + 0.5))


@pytest.mark.slow
def test_float32_rounding_step_for_every_float_up_to_256():
    top = int(np.float32(256).view(np.uint32))
    for start in range(0, top + 1, 1 << 24):
        z = np.arange(start, min(start + (1 << 24), top + 1), dtype=np.uint32).view(np.float32)
        assert _half_up_is_exact(z), start


def test_short_columns_space_the_percentiles():
    """Fewer than 4 rows: missing percentiles are the previous one plus one code."""
    mat = np.array([[0.0, 1.0], [1.0, 1.0]], np.float32)
    obj = cm.compress(mat, 2)
    heads = np.frombuffer(obj[3 + 16:3 + 16 + 16].tobytes(), "<u2").reshape(2, 4)
    assert heads.tolist() == [[0, 65533, 65534, 65535], [65532, 65533, 65534, 65535]]


def test_constant_matrix_round_trips_exactly(implementation):
    for value in (-3.5, 0.0, 1234.5):
        mat = np.full((20, 6), value, np.float32)
        for method in (1, 2, 3, 5):
            obj = cm.compress(mat, method)
            lo, rng = struct.unpack_from("<ff", obj.tobytes(), 4 if method in (3, 5) else 3)
            assert lo == value and rng == np.float32(np.float32(value + 1 + abs(value)) - value)
            assert (cm.decompress(obj)[0] == value).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused(bad, implementation):
    for shape, at in (((10, 3), (4, 1)), ((300, 70), (299, 69)), ((300, 70), (0, 0))):
        mat = np.zeros(shape, np.float32)
        mat[at] = bad
        for method in METHODS:
            with pytest.raises(ValueError, match="NaN or Inf"):
                cm.compress(mat, method)


def test_empty_matrix_is_an_empty_cm_header_that_kaldiio_reads():
    obj = cm.compress(np.zeros((0, 80), np.float32))
    assert obj.tobytes() == b"CM " + bytes(16)
    mat, size = cm.decompress(obj)
    assert mat.shape == (0, 0) and size == 19
    f = io.BytesIO(ark([("empty", obj), ("next", cm.compress(np.ones((3, 2))))]))
    read = dict(kaldiio.load_ark(f))
    assert read["empty"].size == 0 and (read["next"] == 1).all()


def test_a_range_beyond_float32_is_refused():
    with pytest.raises(ValueError, match="overflows float32"):
        cm.compress(np.array([[3e38], [-3e38]], np.float32), 2)


def test_unknown_method_and_shapes_are_refused():
    with pytest.raises(ValueError):
        cm.compress(np.zeros((3, 3)), 8)
    with pytest.raises(ValueError, match="matrix"):
        cm.compress(np.zeros(5))
    with pytest.raises(ValueError, match="3x0"):
        cm.compress(np.zeros((3, 0)))


def test_feature_writer_compresses_as_kaldi(tmp_path, fbank80):
    ark_path = tmp_path / "feats.ark"
    with FeatureWriter(ark_path, tmp_path / "feats.scp", compress=True) as writer:
        for key, mat in fbank80:
            writer.write(key, mat)
    assert ark_path.read_bytes() == (GOLDEN / "fbank80_method1.ark").read_bytes()
    read = dict(kaldiio.load_scp(str(tmp_path / "feats.scp")))
    assert sorted(read) == sorted(key for key, _ in fbank80)


# ---------------------------------------------------------------- the same kernels on torch
# compress_on_device runs the GPU's algorithm; here on the CPU (tests/gpu: on CUDA).

try:
    import torch
except ImportError:  # the numpy tests above still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")


def on_device(mat, method, dtype=None):
    return cm.compress_on_device(torch.tensor(np.asarray(mat), dtype=dtype), method).tobytes()


@needs_torch
@pytest.mark.parametrize("method", METHODS)
def test_torch_kernels_are_byte_identical_to_kaldi(fbank80, wide, wide_sha256, method):
    golden = (GOLDEN / f"fbank80_method{method}.ark").read_bytes()
    assert ark((key, np.frombuffer(on_device(mat, method), np.uint8)) for key, mat in fbank80) == golden
    for key, mat in wide:
        obj = on_device(mat, method)
        assert (len(obj), hashlib.sha256(obj).hexdigest()) == wide_sha256[f"wide_method{method}.ark", key], key


def _torch_edge_matrices():
    rng = np.random.default_rng(7)
    yield from _tricky_matrices()
    for rows in range(1, 9):  # the n < 5 branch, kAutomaticMethod's switch at 8 rows
        yield f"rows{rows}", np.tanh(rng.normal(0, 1.5, (rows, 33)))
    yield "one_column", rng.normal(size=(40, 1))
    yield "one_column_few", rng.normal(size=(3, 1))
    const = rng.normal(size=(70, 6))
    const[:, [1, 4]] = 2.5
    yield "constant_columns", const
    spikes = rng.normal(size=(90, 8))
    spikes[5, :] = 1e4
    spikes[17, 3] = -3e3
    yield "outliers", spikes
    yield "slow_path_many_rows", 1e6 + rng.integers(0, 3, size=(100, 5)) * 0.0625


@needs_torch
@pytest.mark.parametrize("name,mat", list(_torch_edge_matrices()))
def test_torch_kernels_equal_numpy_on_edge_cases(name, mat):
    for method in METHODS:
        assert on_device(mat, method) == cm.compress(mat, method).tobytes(), method


def _batchable(mats):
    """(name, float32 tensor) of matrices compress_batch_on_device takes (>= 5 rows and columns),
    grouped by column count."""
    groups = {}
    for name, mat in mats:
        mat = np.array(mat, np.float32)
        if mat.ndim == 2 and mat.shape[0] >= 5 and mat.shape[1] > 0 and np.isfinite(mat).all():
            groups.setdefault(mat.shape[1], []).append((name, torch.from_numpy(mat)))
    return groups


@needs_torch
def test_batched_kernels_are_byte_identical_to_kaldi(fbank80, wide, wide_sha256):
    """A batch's matrices compressed together (the GPU's writer path, here on the CPU) give
    real Kaldi's kSpeechFeature bytes of each."""
    for cols, group in _batchable(fbank80).items():
        got = cm.compress_batch_on_device([t for _, t in group])
        assert [bytes(g) for g in got] == [cm.compress(t.numpy(), cm.Method.SPEECH_FEATURE).tobytes() for _, t in group]
    compared, groups = 0, _batchable(wide)
    for cols, group in groups.items():
        for (key, _), obj in zip(group, cm.compress_batch_on_device([t for _, t in group])):
            assert (len(obj), hashlib.sha256(obj).hexdigest()) == wide_sha256["wide_method2.ark", key], key
            compared += 1
    assert compared == sum(map(len, groups.values())) >= len(wide) - 1  # one has 1 row


@needs_torch
def test_batched_kernels_equal_numpy_on_edge_cases_and_padded_views():
    """Constant columns, outliers, the slow path, 5..8 rows; and views of one padded tensor,
    as a model's outputs are: each matrix's bytes as compressed alone."""
    for cols, group in _batchable(_torch_edge_matrices()).items():
        got = cm.compress_batch_on_device([t for _, t in group])
        for (name, t), obj in zip(group, got):
            assert bytes(obj) == cm.compress(t.numpy(), cm.Method.SPEECH_FEATURE).tobytes(), name
    rng = np.random.default_rng(3)
    lengths = [300, 9, 140, 77]
    padded = torch.from_numpy(rng.normal(0, 4, (len(lengths), max(lengths), 48)).astype(np.float32))
    views = [padded[b, :n] for b, n in enumerate(lengths)]
    assert [bytes(x) for x in cm.compress_batch_on_device(views)] == \
        [cm.compress(v.numpy()).tobytes() for v in views]  # AUTOMATIC above 8 rows: kSpeechFeature
    with pytest.raises(ValueError, match="NaN or Inf"):
        cm.compress_batch_on_device([views[0], torch.full((20, 48), float("nan"))])


def test_batches_of_matrices_stay_within_their_size_and_column_count(monkeypatch):
    monkeypatch.setattr(cm, "_BATCH_ELEMENTS", 64 * 300)
    mats = [np.zeros((n, c), np.float32) for n, c in
            [(5, 64), (6, 64), (9, 64), (12, 64), (100, 64), (37, 64), (300, 64), (20, 32), (20, 32), (400, 64)]]
    assert list(cm._groups(mats, list(range(len(mats))))) == [[0, 1, 2, 3], [4, 5], [6], [7, 8], [9]]


@needs_torch
def test_compress_many_is_compress_of_each():
    """Host arrays and CPU tensors go one by one (only a GPU's are batched): every method, every
    shape, the same bytes."""
    mats = [m for _, m in _torch_edge_matrices() if np.isfinite(np.asarray(m, np.float64)).all()
            and np.asarray(m).ndim == 2]
    mats = [torch.from_numpy(np.asarray(m, np.float32)) if i % 2 else m for i, m in enumerate(mats)]
    for method in METHODS:
        try:
            want = [cm.compress(m, method).tobytes() for m in mats]
        except ValueError:  # a fixed-range method refusing a matrix: checked elsewhere
            continue
        assert [bytes(x) for x in cm.compress_many(mats, method)] == want, method


@needs_torch
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float64"])
def test_torch_half_precision_is_converted_to_float32_first(dtype):
    rng = np.random.default_rng(5)
    t = torch.as_tensor(np.tanh(rng.normal(0, 1.5, (30, 40))), dtype=getattr(torch, dtype))
    as_float32 = t.to(torch.float32).numpy()
    for method in (1, 2, 3, 5):
        want = cm.compress(as_float32, method).tobytes()
        assert cm.compress_on_device(t, method).tobytes() == want
        assert cm.compress(t, method).tobytes() == want  # a CPU tensor: numpy's path


@needs_torch
def test_torch_input_errors_match_numpy():
    bad = torch.zeros(10, 3)
    bad[4, 1] = float("nan")
    for method in METHODS:
        with pytest.raises(ValueError, match="NaN or Inf"):
            cm.compress_on_device(bad, method)
    with pytest.raises(ValueError, match="matrix"):
        cm.compress_on_device(torch.zeros(5), 1)
    with pytest.raises(ValueError, match="3x0"):
        cm.compress_on_device(torch.zeros(3, 0), 1)
    assert cm.compress_on_device(torch.zeros(0, 80), 1).tobytes() == b"CM " + bytes(16)
    t = torch.ones(12, 4, requires_grad=True) * 2
    assert cm.compress(t, 2).tobytes() == cm.compress(np.full((12, 4), 2.0), 2).tobytes()


@needs_torch
def test_torch_is_not_imported_with_the_compressor():
    import subprocess
    import sys

    code = ("import sys, numpy as np; import speech_reps.kaldi.compress as cm, speech_reps.kaldi.writer; "
            "cm.compress(np.ones((20, 3)), 1); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_compiled_kernels_refuse_sizes_their_buffers_do_not_hold():
    """A wrong call is a ValueError, never a read past a buffer: sizes whose byte counts
    overflow, too few bytes, unaligned floats."""
    kernels = cm._kernels
    stats = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError):
        kernels.column_stats(b"", stats, 2**62, 4)
    with pytest.raises(ValueError):
        kernels.float_to_char(b"", stats, bytearray(0), 2**62, 4)
    with pytest.raises(ValueError):
        kernels.column_stats(np.zeros((5, 3), np.float32), stats, 5, 4)
    unaligned = np.frombuffer(bytearray(4 * 20 + 1), np.float32, 20, offset=1)
    with pytest.raises(ValueError, match="aligned"):
        kernels.column_stats(unaligned, stats, 5, 4)
    mat = np.frombuffer(bytearray(4 * 40 + 1), np.float32, 40, offset=1).reshape(10, 4)
    assert not mat.flags.aligned
    assert cm.compress(mat, 1).tobytes() == cm.compress(mat.copy(), 1).tobytes()  # compress aligns
