"""Choosing the torch device (``--gpu N`` / ``--device``) and precision (``--dtype``), and
moving a padded batch there."""

from speech_reps.errors import ConfigError

DTYPES = ("float32", "bfloat16", "float16")


def resolve_dtype(name):
    import torch

    if name not in DTYPES:
        raise ConfigError(f"--dtype {name}: expected one of {', '.join(DTYPES)}")
    return getattr(torch, name)


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

    if device is None:
        device = "cpu" if gpu is None or gpu < 0 else f"cuda:{gpu}"
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"--device {device}: {e}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: this torch build or machine has no CUDA GPU")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
    return dev
