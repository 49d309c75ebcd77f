"""Precision flags: a model placed on a GPU turns TF32 off for float32 (on for --dtype tf32),
the torch front end never uses TF32, and the CPU is left alone. (On a GPU, tests/gpu checks
that the flags reach the models' outputs.)"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import golden_wav
from decoar_files import random_weights, write_torch_checkpoint
from speech_reps import cli
from speech_reps.models.torch_device import (exact_float32, host_array, padded_batch, per_utterance, place, set_tf32,
                                             small_to_device, tf32_flags)

ON, OFF = (True, True, "high"), (False, False, "highest")


@pytest.fixture(autouse=True)
def torch_defaults():
    """torch's own defaults before each test, and back after it (the flags are process-wide)."""
    saved = tf32_flags()
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
    torch.set_float32_matmul_precision("highest")
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
    torch.set_float32_matmul_precision(saved[2])


def test_set_tf32_sets_cublas_cudnn_and_matmul_precision():
    assert tf32_flags() == (False, True, "highest")  # torch's defaults: cuDNN convolutions in TF32
    set_tf32(True)
    assert tf32_flags() == ON
    set_tf32(False)
    assert tf32_flags() == OFF
    if hasattr(torch.backends.cudnn, "conv"):  # torch >= 2.9: the newer per-operation settings agree
        assert torch.backends.cudnn.conv.fp32_precision != "tf32"
        assert torch.backends.cudnn.rnn.fp32_precision != "tf32"
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"


def test_exact_float32_turns_tf32_off_on_cuda_only_and_restores_it():
    set_tf32(True)
    with exact_float32("cuda:0"):
        assert tf32_flags() == OFF
    assert tf32_flags() == ON
    with exact_float32("cpu"):
        assert tf32_flags() == ON
    set_tf32(False)
    with exact_float32(torch.device("cuda")):
        assert tf32_flags() == OFF
    assert tf32_flags() == OFF


def test_placing_on_the_cpu_leaves_the_flags_alone():
    net, dtype = place(torch.nn.Linear(3, 2), torch.device("cpu"), "tf32")
    assert dtype == torch.float32 and not net.training and net.weight.dtype == torch.float32
    assert tf32_flags() == (False, True, "highest")
    _, dtype = place(torch.nn.Linear(3, 2), torch.device("cpu"), "bfloat16")
    assert dtype == torch.bfloat16 and tf32_flags() == (False, True, "highest")


def test_cli_accepts_dtype_tf32(tmp_path):
    params = write_torch_checkpoint(tmp_path / "decoar.pt", random_weights(input_dim=80, hidden=32, layers=2))
    outputs = {}
    for dtype in ("float32", "tf32"):
        out = tmp_path / f"{dtype}.npy"
        argv = ["featurize", "--model", "decoar", "--params", str(params), "--dtype", dtype,
                "--in-wav", str(golden_wav("spk1-utt1")), "--out-npy", str(out)]
        assert cli.main(argv) == 0
        outputs[dtype] = np.load(out)
    assert outputs["tf32"].shape == (318, 64)
    assert np.array_equal(outputs["tf32"], outputs["float32"])


def test_padded_batch_pads_arrays_and_device_tensors_alike_with_zeros():
    """Host arrays are padded on the host; tensors already on the model's device (the GPU front
    end's views) are padded there: the same batch either way, zeros beyond each length."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((t, 3)).astype(np.float32) for t in (4, 7, 1)]
    want = np.zeros((3, 7, 3), np.float32)
    for row, x in enumerate(arrays):
        want[row, :len(x)] = x
    from_arrays = padded_batch(arrays, torch.device("cpu"))
    base = torch.from_numpy(want.copy())
    views = [base[row, :len(x)] for row, x in enumerate(arrays)]
    from_views = padded_batch(views, "cpu", torch.bfloat16)
    assert np.array_equal(from_arrays.numpy(), want)
    assert from_views.dtype == torch.bfloat16 and torch.equal(from_views, torch.from_numpy(want).bfloat16())


def test_per_utterance_outputs_are_contiguous_host_arrays_from_a_cpu_tensor():
    out = torch.arange(2 * 5 * 3, dtype=torch.bfloat16).reshape(2, 5, 3)
    first, second = per_utterance(out, [5, 2])
    assert isinstance(first, np.ndarray) and first.dtype == np.float32 and first.flags.c_contiguous
    assert np.array_equal(second, out[1, :2].float().numpy()) and second.flags.c_contiguous
    assert host_array(first) is first and np.array_equal(host_array(out[0].float()), first)


def test_small_to_device_gives_the_values_as_a_tensor_there():
    assert torch.equal(small_to_device([3, 1, 2], "cpu"), torch.tensor([3, 1, 2]))
    lengths = torch.tensor([5, 7])
    assert torch.equal(small_to_device(lengths, torch.device("cpu")), lengths)


class _Products(torch.nn.Module):
    """Each kind of product a model has: a linear layer, a convolution, wav2vec 2.0's weight-normed one."""

    def __init__(self):
        super().__init__()
        from speech_reps.models.wav2vec2_net import WeightNormConv1d

        self.conv = torch.nn.Conv1d(4, 8, 3, stride=2)
        self.pos = WeightNormConv1d(8, 4, 2)
        self.linear = torch.nn.Linear(8, 5)

    def forward(self, x):
        y = self.pos(self.conv(x))
        return self.linear(y.transpose(1, 2))


def _bf16_products_net():
    torch.manual_seed(0)
    net = _Products()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.5)
    return net


def test_bf16_products_in_float32_are_float32_products_of_the_bfloat16_values():
    from speech_reps.models.bf16_products import products_in_float32

    x = torch.randn(2, 4, 41).bfloat16()
    native = _bf16_products_net().to(torch.bfloat16)
    net = _bf16_products_net().to(torch.bfloat16)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    products_in_float32(net)
    assert {k: v.dtype for k, v in net.state_dict().items()} == {k: v.dtype for k, v in state.items()}
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())  # same names, same bfloat16 values
    with torch.inference_mode():
        out, ref = net(x), native(x)
        # by hand: each product in float32 on the bfloat16 operands, its result rounded to bfloat16
        p = native
        y = F.conv1d(x.float(), p.conv.weight.float(), p.conv.bias.float(), stride=2).bfloat16()
        w = p.pos.weight_v * (p.pos.weight_g / p.pos.weight_v.norm(dim=(0, 1), keepdim=True))
        y = F.conv1d(y.float(), w.float(), p.pos.bias.float(), padding=2, groups=2).bfloat16()
        by_hand = F.linear(y.transpose(1, 2).float(), p.linear.weight.float(), p.linear.bias.float()).bfloat16()
    assert out.dtype == torch.bfloat16 and torch.equal(out, by_hand)
    # and oneDNN's bfloat16 kernels agree within bfloat16's rounding (they sum in another order)
    assert (out.float() - ref.float()).abs().max() <= 0.02 * ref.float().abs().max()


@pytest.mark.parametrize("units", [True, False])
def test_placing_in_bfloat16_on_a_cpu_uses_float32_products_only_without_bf16_units(units, monkeypatch):
    from speech_reps.models import bf16_products

    monkeypatch.setattr(bf16_products, "cpu_has_bf16_units", lambda: units)
    net, dtype = place(_bf16_products_net(), torch.device("cpu"), "bfloat16")
    assert dtype == torch.bfloat16 and net.linear.weight.dtype == torch.bfloat16
    kinds = {type(net.linear).__name__, type(net.conv).__name__, type(net.pos).__name__}
    assert kinds == ({"Linear", "Conv1d", "WeightNormConv1d"} if units else
                     {"_LinearInFloat32", "Conv1dInFloat32", "WeightNormConv1dInFloat32"})
    float32, _ = place(_bf16_products_net(), torch.device("cpu"), "float32")
    assert type(float32.linear) is torch.nn.Linear  # float32 is never touched


class _Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
        self.a, self.b = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)
        self.b.weight = self.a.weight  # shared by two modules


class _Unsaved(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)
        self.register_buffer("window", torch.hann_window(4), persistent=False)  # no file holds it


def test_uninitialised_modules_draw_no_weights_and_load_like_those_made_as_usual():
    """The module the strict loader fills is made without its random initialisation (start-up
    time), and once loaded computes as one made as usual: an LSTM's flat weights follow, shared
    tensors stay shared, and a module holding tensors no state dict carries is made as usual."""
    from speech_reps.models.formats.strict import load_into, uninitialised

    torch.manual_seed(0)
    usual = _Tied()
    state = {k: v.detach().clone().normal_() for k, v in usual.state_dict().items()}
    load_into(usual, state, "x.pt", "a test net")
    rng = torch.get_rng_state()
    net = uninitialised(_Tied)
    assert torch.equal(torch.get_rng_state(), rng)  # nothing drawn
    assert all(t.device.type == "cpu" for t in net.state_dict().values())
    load_into(net, state, "x.pt", "a test net")
    assert net.b.weight is net.a.weight
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        assert torch.equal(net.lstm(x)[0], usual.lstm(x)[0])
    unsaved = uninitialised(_Unsaved)
    assert torch.equal(unsaved.window, torch.hann_window(4))
