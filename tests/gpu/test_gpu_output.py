"""The GPU output path (engine/output.py, kaldi/host_staging.py): device outputs left on the
device for the writer thread, which copies them through page-locked blocks on a stream of its
own, exactly; a model returning CUDA tensors writes the same archive as one returning numpy
arrays, compressed or not."""

import dataclasses

import numpy as np
import pytest
import torch

from speech_reps.engine.output import OutputPath
from speech_reps.models.kaldi_features import Fbank
from speech_reps.models.registry import register
from test_engine import fbank_arks

pytestmark = pytest.mark.gpu
DEVICE = "cuda:0"


@register(dataclasses.replace(Fbank.spec, name="fbank-on-cuda", summary="test only: fbank as CUDA tensors"))
class FbankOnCuda(Fbank):
    """fbank whose outputs are CUDA tensors, as a model on the GPU returns them."""

    kind = "fbank"

    def featurize(self, batch):
        return [torch.from_numpy(np.array(x, dtype=np.float32)).to(DEVICE) for x in batch.inputs]


def test_outputs_stay_on_the_device_and_come_to_the_host_exactly_through_pinned_blocks():
    """The main thread only queues: the outputs stay CUDA tensors behind an event; the writer
    thread copies them through page-locked blocks (kaldi/host_staging.py), exactly, a block
    reused only after the next take."""
    from speech_reps.kaldi.host_staging import HostStaging

    rng = torch.Generator(device=DEVICE).manual_seed(0)
    batch = [torch.randn(t, 64, device=DEVICE, generator=rng) for t in (5, 300, 17, 40, 2000)]
    host = OutputPath().take(batch)
    assert host.deferred and all(x.is_cuda for x in host.arrays)
    host.wait()
    host.writer_stream()
    staging = HostStaging(block_bytes=300 * 64 * 4, blocks=2)  # the 2000-row matrix does not fit
    staging.begin(host.arrays)
    taken = [staging.take(x) for x in host.arrays]
    assert taken[-1] is None
    assert np.array_equal(taken[-2], batch[-2].cpu().numpy())  # nothing was copied over it
    assert torch.cuda.current_stream(DEVICE) == host.stream
    torch.cuda.set_stream(torch.cuda.default_stream(DEVICE))
    staging = HostStaging(block_bytes=300 * 64 * 4, blocks=2)
    staging.begin(batch[:4])
    for x in batch[:4]:
        got = staging.take(x)
        assert got.dtype == np.float32 and np.array_equal(got, x.cpu().numpy())
        torch.cuda.synchronize()  # any copy queued into another block is done: this one is intact
        assert np.array_equal(got, x.cpu().numpy())


@pytest.mark.parametrize("compress", [False, True])
def test_cuda_outputs_are_written_as_numpy_outputs(compress, tmp_path):
    arks = fbank_arks(tmp_path, ("fbank", "fbank-on-cuda"), compress, utterances=12, bins=40, batch_frames=400)
    assert arks[0] == arks[1]


def test_a_layer_sweep_writes_a_gpu_matrix_as_its_host_copy(tmp_path):
    """LayerSplitWriter (--layer 4,8,12) copies a GPU's matrix to the host once, through its own
    page-locked blocks, and each layer's archive holds that layer's columns, as from numpy."""
    from speech_reps.layer_sweep import open_writer

    rng = torch.Generator(device=DEVICE).manual_seed(0)
    mats = [torch.randn(t, 3 * 8, device=DEVICE, generator=rng) for t in (5, 40, 7)]
    for name, values in (("gpu", mats), ("host", [m.cpu().numpy() for m in mats])):
        with open_writer(tmp_path / name, "feats", False, None, (4, 8, 12), 24) as writer:
            ops = [("write", f"u{i}", m) for i, m in enumerate(values)]
            writer.prepare(ops)
            for _, key, m in ops:
                writer.write(key, m)
    for layer in (4, 8, 12):
        gpu, host = ((tmp_path / name / f"layer{layer}" / "feats.ark").read_bytes() for name in ("gpu", "host"))
        assert gpu == host and len(gpu) > 40 * 8 * 4


def test_a_staged_matrix_is_complete_when_taken_even_behind_slow_device_work():
    """HostStaging.take waits for that matrix's copy: with about a second of device work queued
    before the copy on the same stream, the array it returns already holds every value."""
    from speech_reps.kaldi.host_staging import HostStaging

    x = torch.randn(300, 64, device=DEVICE)
    want = x.cpu().numpy()
    stream = torch.cuda.Stream(DEVICE)
    with torch.cuda.stream(stream):
        torch.cuda._sleep(2 * 10 ** 9)  # clock cycles the stream spins before the copy can run
        staging = HostStaging(block_bytes=1 << 20, blocks=2)
        staging.begin([x])
        got = staging.take(x).copy()
    assert np.array_equal(got, want)
