"""Choosing the torch device from ``--gpu N`` / ``--device``."""

from speech_reps.errors import ConfigError


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
