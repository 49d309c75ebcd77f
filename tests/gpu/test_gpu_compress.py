"""Kaldi's compressed matrix computed on a CUDA GPU (compress_on_device): the bytes of real
Kaldi's copy-feats --compress=true, of numpy's path, for every method, also from bfloat16."""

import hashlib

import numpy as np
import pytest
import torch

from speech_reps.kaldi import compress as cm
from speech_reps.kaldi.writer import FeatureWriter
from test_compress import GOLDEN, METHODS, _torch_edge_matrices, ark

pytestmark = pytest.mark.gpu
DEVICE = "cuda:0"


@pytest.fixture(scope="module")
def goldens():
    import kaldiio

    from test_compress import DATA
    return list(kaldiio.load_ark(str(DATA / "fbank80.ark"))), list(kaldiio.load_ark(str(GOLDEN / "wide.ark")))


def on_gpu(mat, method, dtype=torch.float32):
    return cm.compress(torch.tensor(np.asarray(mat), dtype=dtype, device=DEVICE), method).tobytes()


@pytest.mark.parametrize("method", METHODS)
def test_gpu_compression_is_byte_identical_to_kaldi(goldens, method):
    fbank80, wide = goldens
    golden = (GOLDEN / f"fbank80_method{method}.ark").read_bytes()
    assert ark((key, np.frombuffer(on_gpu(mat, method), np.uint8)) for key, mat in fbank80) == golden
    table = {}
    for line in (GOLDEN / "wide_sha256.txt").read_text().splitlines():
        name, key, size, digest = line.split()
        table[name, key] = (int(size), digest)
    for key, mat in wide:
        obj = on_gpu(mat, method)
        assert (len(obj), hashlib.sha256(obj).hexdigest()) == table[f"wide_method{method}.ark", key], key


@pytest.mark.parametrize("name,mat", list(_torch_edge_matrices()))
def test_gpu_compression_equals_numpy_on_edge_cases(name, mat):
    for method in METHODS:
        assert on_gpu(mat, method) == cm.compress(mat, method).tobytes(), method


def test_gpu_compression_of_large_and_half_precision_matrices():
    rng = np.random.default_rng(11)
    for rows in (100, 1000, 1500):
        mat = np.tanh(rng.normal(0, 1.5, (rows, 2048))).astype(np.float32)
        for method in (1, 2, 3, 5):
            assert on_gpu(mat, method) == cm.compress(mat, method).tobytes(), (rows, method)
    t = torch.as_tensor(np.tanh(rng.normal(0, 1.5, (300, 512))), dtype=torch.bfloat16, device=DEVICE)
    assert cm.compress(t, 1).tobytes() == cm.compress(t.float().cpu().numpy(), 1).tobytes()


def test_writer_compresses_gpu_tensors_on_the_gpu(tmp_path, goldens):
    fbank80, _ = goldens
    with FeatureWriter(tmp_path / "feats.ark", tmp_path / "feats.scp", compress=True) as w:
        for key, mat in fbank80:
            w.write(key, torch.tensor(mat, device=DEVICE))
    assert (tmp_path / "feats.ark").read_bytes() == (GOLDEN / "fbank80_method1.ark").read_bytes()


def test_a_batch_compressed_together_on_the_gpu_is_each_compressed_alone():
    """compress_many (the writer's path for a GPU batch): views of one padded tensor and other
    matrices, every method; the bytes of numpy's compression of each."""
    from test_compress import _torch_edge_matrices

    rng = np.random.default_rng(5)
    lengths = [300, 9, 140, 77, 3, 8]
    padded = torch.tensor(rng.normal(0, 4, (len(lengths), max(lengths), 48)), dtype=torch.float32, device=DEVICE)
    mats = [padded[b, :n] for b, n in enumerate(lengths)]
    mats += [torch.tensor(np.asarray(m, np.float32), device=DEVICE) for _, m in _torch_edge_matrices()
             if np.asarray(m).ndim == 2 and np.isfinite(np.asarray(m, np.float64)).all()]
    for method in METHODS:
        try:
            want = [cm.compress(m.cpu().numpy(), method).tobytes() for m in mats]
        except ValueError:
            continue
        assert [bytes(x) for x in cm.compress_many(mats, method)] == want, method
