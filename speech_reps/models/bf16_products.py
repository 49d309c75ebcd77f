"""bfloat16 models on an x86 CPU without BF16 instructions: their matrix products (linear layers
and convolutions) computed in float32 on the same bfloat16 values, the result rounded to bfloat16.

Why: without AVX512_BF16 or AMX, oneDNN emulates a bfloat16 GEMM or convolution in software, and
the model runs 2-3x slower than in float32 (wav2vec 2.0 base, one 10 s utterance, Xeon Cascade
Lake: 3.07 s in bfloat16 against 1.39 s in float32; the linear layers alone 3.2x slower). Such
a product is the same computation as oneDNN's: the product of two bfloat16 numbers is exact in
float32, a bfloat16 GEMM sums in float32 and rounds its output to bfloat16, so what changes is
only the order of the float32 sums, as between any two GEMM kernels. Measured on that
utterance: the output's error against float32 1.195% (mean, relative) both ways, and 1.34 s.

What stays in bfloat16 is everything else (norms, activations, attention, recurrences: an LSTM's
state is not a product we may widen), and a CPU with the instructions (or a GPU) keeps the
native kernels. ``products_in_float32(net)`` changes the modules' classes in place (their
parameters, names and state dict stay as they are); call it once the weights are loaded (the
linear layers keep float32 copies of their weights, made then: 6 bytes a weight, where a float32
model holds 4 and torch's bfloat16 kernels 2, for the speed).
"""

import platform

import torch
import torch.nn.functional as F
from torch import nn


def cpu_has_bf16_units():
    """Whether this CPU multiplies bfloat16 in hardware (or is not x86, where we do not judge)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(probe is None for probe in probes):  # a torch that cannot tell: keep its own kernels
        return True
    return any(probe() for probe in probes)


class _LinearInFloat32(nn.Linear):
    """nn.Linear on bfloat16 input: float32 copies of the weights, made once (non-persistent
    buffers: the state dict keeps the bfloat16 parameters)."""

    def forward(self, x):
        return F.linear(x.float(), self.weight_float32, self.bias_float32).to(x.dtype)


class _ConvInFloat32:
    """For a convolution whose forward ends in ``_conv_forward(x, weight, bias)`` (nn.Conv1d's,
    and wav2vec 2.0's weight-normed one, which makes its weight at each call)."""

    def _conv_forward(self, x, weight, bias):
        bias = None if bias is None else bias.float()
        return super()._conv_forward(x.float(), weight.float(), bias).to(x.dtype)


_conv_classes = {}  # a convolution class -> its subclass with _ConvInFloat32


def _conv_in_float32(cls):
    if cls not in _conv_classes:
        _conv_classes[cls] = type(f"{cls.__name__}InFloat32", (_ConvInFloat32, cls), {})
    return _conv_classes[cls]


def products_in_float32(net):
    """``net``'s linear layers and convolutions computed in float32 on their bfloat16 values
    (module doc); returns ``net``."""
    for module in net.modules():
        if type(module) is nn.Linear:
            module.register_buffer("weight_float32", module.weight.detach().float(), persistent=False)
            bias = None if module.bias is None else module.bias.detach().float()
            module.register_buffer("bias_float32", bias, persistent=False)
            module.__class__ = _LinearInFloat32
        elif hasattr(type(module), "_conv_forward") and not isinstance(module, _ConvInFloat32):
            module.__class__ = _conv_in_float32(type(module))
    return net
