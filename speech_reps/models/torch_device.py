"""Choosing the torch device (``--gpu N`` / ``--device``) and precision (``--dtype``), placing a
model there, and moving a padded batch there.

Precision on a GPU: PyTorch lets cuDNN run float32 convolutions and LSTMs in TF32 (10-bit
mantissa) by default, which breaks the toolkit's contract on a GPU (a batch equals its
utterances one by one within 1e-5; a port equals its original within 1e-4). So placing a model
on a CUDA device sets torch's TF32 flags: off for ``--dtype float32`` (and the half precisions,
whose float32 parts then stay float32), on for ``--dtype tf32``. These flags are process-wide:
a library user who trains in the same process gets them too, and the last model placed decides.
"""

import logging
from contextlib import contextmanager

import numpy as np

from speech_reps.errors import ConfigError
from speech_reps.kaldi.compress import is_tensor  # a tensor told without importing torch

log = logging.getLogger(__name__)
# tf32: float32 tensors, with matmuls and convolutions on a GPU's TF32 units (~1e-3 relative
# error, faster); on a CPU it is float32.
DTYPES = ("float32", "tf32", "bfloat16", "float16")


def resolve_dtype(name):
    """The torch dtype of the tensors for a --dtype name (tf32: float32)."""
    import torch

    if name not in DTYPES:
        raise ConfigError(f"--dtype {name}: expected one of {', '.join(DTYPES)}")
    return torch.float32 if name == "tf32" else getattr(torch, name)


def set_tf32(allowed):
    """Turn TF32 on or off for float32 matmuls (cuBLAS) and convolutions/RNNs (cuDNN),
    process-wide. Uses the flags every torch 2 release has; setting them keeps the newer
    ``fp32_precision`` settings consistent, so either kind of getter still reads them."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = allowed
    torch.backends.cudnn.allow_tf32 = allowed
    torch.set_float32_matmul_precision("high" if allowed else "highest")


def tf32_flags():
    """(cuBLAS matmul TF32, cuDNN TF32, float32 matmul precision) as torch has them now."""
    import torch

    return (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.get_float32_matmul_precision())


@contextmanager
def exact_float32(device):
    """Within it, float32 work on a CUDA ``device`` runs without TF32 (the front end, which
    must stay equal to Kaldi whatever precision the model uses); the flags are restored after.
    A no-op on other devices."""
    import torch

    if torch.device(device).type != "cuda":
        yield
        return
    try:
        saved = tf32_flags()
    except RuntimeError:  # flags set inconsistently through torch's two APIs: nothing to restore
        saved = None
    set_tf32(False)
    try:
        yield
    finally:
        if saved is not None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
            torch.set_float32_matmul_precision(saved[2])


def place(net, device, dtype="float32"):
    """``net`` in eval mode on ``device`` in ``dtype`` (a DTYPES name), and the torch dtype its
    inputs take. On a CUDA device this sets the process-wide TF32 flags (see the module doc). In
    bfloat16 on a CPU without BF16 instructions, its linear layers and convolutions multiply in
    float32 on the bfloat16 values (models/bf16_products.py: the same rounding, 2x faster)."""
    import torch

    torch_dtype = resolve_dtype(dtype)
    if device.type == "cuda":
        set_tf32(dtype == "tf32")
    net = net.eval().to(device, torch_dtype)
    if device.type == "cpu" and torch_dtype == torch.bfloat16:
        from speech_reps.models import bf16_products

        if not bf16_products.cpu_has_bf16_units():
            log.info("bfloat16 on a CPU without BF16 instructions: linear layers and convolutions multiply "
                     "in float32 on the bfloat16 values (the same rounding, 2x faster than emulated bfloat16)")
            bf16_products.products_in_float32(net)
    for module in net.modules():
        if isinstance(module, torch.nn.RNNBase):  # one weight buffer for cuDNN, not compacted at every call
            module.flatten_parameters()
    return net, torch_dtype


def to_device(array, device, dtype=None):
    """A numpy array as a tensor on ``device`` (through pinned memory for a GPU, so the copy
    is asynchronous), cast to ``dtype`` there."""
    import torch

    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    else:
        tensor = tensor.to(device)
    return tensor if dtype is None else tensor.to(dtype)


def resolve_device(device=None, gpu=None):
    """``device`` wins ('cpu', 'cuda', 'cuda:1'); else ``gpu`` N gives cuda:N; else the CPU."""
    import torch

    from speech_reps.defaults import requested_device

    device = requested_device({"device": device, "gpu": gpu})  # the same reading as before the model exists
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"--device {device}: {e}") from None
    if dev.type not in ("cpu", "cuda"):  # mps, xpu, meta...: torch's own errors come as tracebacks
        raise ConfigError(f"--device {device}: speech-reps runs on 'cpu' or 'cuda' ('cuda:N')")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: this torch build or machine has no CUDA GPU "
                              "(README.md, section GPUs: installing a CUDA build of torch)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
    return dev


def padded_batch(inputs, device, dtype=None):
    """One zero-padded (B, T_max, ...) tensor on ``device`` (cast to ``dtype`` there) of a
    batch's inputs: numpy arrays (padded on the host, copied once through pinned memory) or
    tensors already on ``device`` (the GPU front end's: padded there, nothing crosses the bus)."""
    import torch

    device = torch.device(device)
    if all(isinstance(x, torch.Tensor) and x.device.type == device.type for x in inputs):
        padded = torch.nn.utils.rnn.pad_sequence(list(inputs), batch_first=True)
        return padded.to(device, dtype)  # a no-op when already there in that dtype
    inputs = [x.cpu().numpy() if isinstance(x, torch.Tensor) else x for x in inputs]
    host = np.zeros((len(inputs), max(len(x) for x in inputs), *inputs[0].shape[1:]), dtype=np.float32)
    for row, x in enumerate(inputs):
        host[row, :len(x)] = x
    return to_device(host, device, dtype)


def per_utterance(out, lengths):
    """A padded (B, T, ...) output as one float32 (T_i, ...) per utterance. From a CPU tensor:
    C-contiguous numpy arrays (views where they already are). From a GPU: views of the tensor on the device, left
    there: the engine copies them out behind the next batch's computation, or compresses them on
    the device (engine/output.py); ``host_array`` brings one to the host."""
    out = out.float()
    if out.device.type != "cpu":
        return [out[row, :n] for row, n in enumerate(lengths)]
    out = out.numpy()
    return [np.ascontiguousarray(out[row, :n]) for row, n in enumerate(lengths)]  # no copy when contiguous


def host_array(x):
    """One output as a host numpy array (a copy only for a tensor on a device); a numpy array
    or another value as it is."""
    if not is_tensor(x):
        return x
    return x.detach().numpy() if x.device.type == "cpu" else x.detach().cpu().numpy()


def small_to_device(values, device):
    """A few host values (lengths, frame counts) as a tensor on ``device``, without stopping the
    host. CUDA runs a copy from pageable memory only after everything queued on the stream
    before it, and the host waits for that: the main thread, preparing batch k+1, would wait for
    the GPU to finish batch k. From pinned memory the copy is queued like a kernel (torch keeps
    the pinned block until it ran)."""
    import torch

    device = torch.device(device)
    values = torch.as_tensor(values)
    if device.type != "cuda" or values.device.type != "cpu":
        return values.to(device)
    return values.pin_memory().to(device, non_blocking=True)
