"""Every torch model on a CUDA GPU keeps the float32 contract: a batch equals its utterances one
by one (1e-5) and the GPU equals the CPU (1e-4), at the published sizes on real speech, because
placing a model on the GPU turns TF32 off; --dtype tf32 turns it on; bfloat16 and float16 stay
close to float32. (python -m bench.gpu_parity prints the same numbers as a table.)"""

import numpy as np
import pytest
import torch

from bench.gpu_parity import MODELS as FULL_SIZE_MODELS
from bench.gpu_parity import max_diff, model_inputs, model_parity, outputs, speech_waves, write_checkpoints
from bertphone_files import random_weights, write_bertphone
from speech_reps.models.registry import create
from speech_reps.models.torch_device import tf32_flags

pytestmark = pytest.mark.gpu
DEVICE = "cuda:0"
MODELS = (*FULL_SIZE_MODELS, "bertphone")
OFF, ON = (False, False, "highest"), (True, True, "high")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Full-size checkpoints (bench.gpu_parity); BERTphone at the tests' small size (its .params
    writer lives in the tests)."""
    d = tmp_path_factory.mktemp("gpu_models")
    options = write_checkpoints(d, FULL_SIZE_MODELS)
    options["bertphone"] = {"params": str(write_bertphone(d / "bertphone.params", random_weights()))}
    return options


@pytest.fixture(scope="module")
def parity(checkpoints):
    """model -> bench.gpu_parity.model_parity's numbers, computed once per model."""
    found = {}

    def get(model):
        if model not in found:
            found[model] = model_parity(model, checkpoints[model], DEVICE)
        return found[model]

    return get


@pytest.fixture(autouse=True)
def keep_flags():
    saved = tf32_flags()
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
    torch.set_float32_matmul_precision(saved[2])


def tolerance(bound, scale):
    """``bound`` absolute for outputs within [-1, 1]; relative beyond (float32 rounding of other
    kernel choices grows with the values; TF32's ~1e-3 relative stays far above it)."""
    return bound * max(1.0, scale)


@pytest.mark.parametrize("model", MODELS)
def test_batched_equals_one_by_one_on_the_gpu(model, parity):
    r = parity(model)
    assert r["float32"][0] <= tolerance(1e-5, r["scale"]), r


@pytest.mark.parametrize("model", MODELS)
def test_gpu_equals_cpu_in_float32(model, parity):
    r = parity(model)
    assert r["float32"][1] <= tolerance(1e-4, r["scale"]), r


@pytest.mark.parametrize("model", MODELS)
def test_tf32_stays_near_float32(model, parity):
    r = parity(model)
    assert r["tf32"][1] <= tolerance(1e-2, r["scale"]), r


@pytest.mark.parametrize("dtype,flags", [("float32", OFF), ("tf32", ON), ("bfloat16", OFF), ("float16", OFF)])
def test_placing_a_model_on_the_gpu_sets_tf32(dtype, flags, checkpoints):
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = True, False  # torch's defaults
    model = create("decoar", **checkpoints["decoar"], device=DEVICE, dtype=dtype)
    assert tf32_flags() == flags
    assert model.describe()["dtype"] == dtype


@pytest.mark.parametrize("model", MODELS)
def test_half_precision_on_the_gpu_is_close_to_float32(model, checkpoints):
    float32 = create(model, **checkpoints[model], device=DEVICE)
    inputs, num_samples = model_inputs(float32, speech_waves())
    reference = outputs(float32, inputs, num_samples)
    scale = max(float(np.abs(r).max()) for r in reference)
    del float32
    for dtype in ("bfloat16", "float16"):
        half = outputs(create(model, **checkpoints[model], device=DEVICE, dtype=dtype), inputs, num_samples)
        assert all(h.dtype == np.float32 for h in half)
        error = max_diff(half, reference) / scale
        print(f"{model} {dtype}: max abs error {error * scale:.2e} ({error:.1e} of the output scale)")
        assert 0 < error <= 0.1, (dtype, error)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_padded_attention_on_the_gpu_masks_padding_as_the_reference_does(dtype):
    """models/attention.py (cuDNN's backend left out) against attention written out in float64:
    padded keys get no weight, and each utterance's rows are what it gets alone."""
    from speech_reps.models.attention import padded_attention

    g = torch.Generator(device=DEVICE).manual_seed(0)
    lengths = [37, 29, 16]
    q, k, v = (torch.randn(3, 12, 37, 64, device=DEVICE, generator=g) for _ in range(3))
    mask = (torch.arange(37, device=DEVICE)[None, :] < torch.tensor(lengths, device=DEVICE)[:, None])[:, None, None, :]
    out = padded_attention(*(t.to(getattr(torch, dtype)) for t in (q, k, v)), mask).double()
    scores = (q.double() @ k.double().transpose(-1, -2)) / 8.0
    want = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1) @ v.double()
    tolerance = 1e-5 if dtype == "float32" else 5e-2  # bfloat16: 1.0e-2 on a CPU
    assert (out - want).abs().max().item() <= tolerance
    alone = padded_attention(q[2:, :, :16], k[2:, :, :16], v[2:, :, :16], None).double()
    assert (out[2:, :, :16] - alone).abs().max().item() <= tolerance
