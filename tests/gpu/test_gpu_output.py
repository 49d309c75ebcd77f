"""The GPU output path (engine/output.py): device outputs copied into pinned, double-buffered
host memory on a stream of their own, exactly; a model returning CUDA tensors writes the same
archive as one returning numpy arrays."""

import dataclasses
import threading

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


def test_pinned_copies_are_exact_and_buffers_are_reused_only_once_released():
    path = OutputPath(slots=2)
    rng = torch.Generator(device=DEVICE).manual_seed(0)
    batches = [[torch.randn(t, 64, device=DEVICE, generator=rng) for t in (5, 300, 17)] for _ in range(3)]
    first = path.take(batches[0])
    second = path.take(batches[1])
    assert first.deferred and second.deferred
    for host, device in ((first, batches[0]), (second, batches[1])):
        host.wait()
        for array, tensor in zip(host.arrays, device):
            assert array.dtype == np.float32 and np.array_equal(array, tensor.cpu().numpy())
    taken = []
    third = threading.Thread(target=lambda: taken.append(path.take(batches[2])))
    third.start()
    third.join(0.5)
    assert third.is_alive()  # both buffers are still held by the writer
    first.release()
    third.join(10)
    assert taken and not third.is_alive()
    taken[0].wait()
    assert all(np.array_equal(a, t.cpu().numpy()) for a, t in zip(taken[0].arrays, batches[2]))
    assert all(np.array_equal(a, t.cpu().numpy()) for a, t in zip(second.arrays, batches[1]))  # untouched


@pytest.mark.parametrize("compress", [False, True])
def test_cuda_outputs_are_written_as_numpy_outputs(compress, tmp_path):
    arks = fbank_arks(tmp_path, ("fbank", "fbank-on-cuda"), compress, utterances=12, bins=40, batch_frames=400)
    assert arks[0] == arks[1]
