"""GE2E encoder weights from a resemblyzer checkpoint (``{step, model_state, optimizer_state}``).

The default file is the ``pretrained.pt`` inside the installed resemblyzer wheel, found through
the wheel's metadata so that resemblyzer itself is never imported (its ``__init__`` imports
librosa and webrtcvad, which speech-reps does not need). Loading is strict: every tensor of the
encoder must be there with its shape, and anything else is an error — except the GE2E loss's
learned scale and offset (``similarity_weight``, ``similarity_bias``), used only in training.
"""

from pathlib import Path

import numpy as np

from speech_reps.errors import ConfigError
from speech_reps.models.decoar_checkpoint import layer_count, tensors_as_numpy, torch_load

RESEMBLYZER_PIN = "resemblyzer==0.1.4"
TRAINING_ONLY = ("similarity_weight", "similarity_bias")


class CheckpointError(ConfigError):
    pass


def installed_weights():
    """Path of resemblyzer's pretrained.pt in this environment; a ConfigError if it is not installed."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("resemblyzer")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"ge2e: no weights: the resemblyzer wheel, which carries them, is not installed; "
                          f"pip install --no-deps {RESEMBLYZER_PIN} (make venv does), or pass --params "
                          "<pretrained.pt>") from None
    path = Path(dist.locate_file("resemblyzer/pretrained.pt"))
    if not path.is_file():
        raise ConfigError(f"ge2e: resemblyzer {dist.version} is installed but {path} is missing; "
                          f"reinstall it: pip install --no-deps --force-reinstall {RESEMBLYZER_PIN}")
    return path


def expected_shapes(n_mels, hidden, layers, embedding):
    shapes = {"linear.weight": (embedding, hidden), "linear.bias": (embedding,)}
    for k in range(layers):
        shapes.update({f"lstm.weight_ih_l{k}": (4 * hidden, n_mels if k == 0 else hidden),
                       f"lstm.weight_hh_l{k}": (4 * hidden, hidden),
                       f"lstm.bias_ih_l{k}": (4 * hidden,),
                       f"lstm.bias_hh_l{k}": (4 * hidden,)})
    return shapes


def _read_state(path):
    ckpt = torch_load(path, CheckpointError)
    state = ckpt.get("model_state") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        have = sorted(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: expected resemblyzer's checkpoint, a dict with 'model_state'; found {have}")
    return state


def load_ge2e_weights(path):
    """({name: float32 ndarray}, (n_mels, hidden, layers, embedding)) after a strict check."""
    state = _read_state(path)
    tensors, others = tensors_as_numpy(state, path, CheckpointError)
    tensors = {k: v for k, v in tensors.items() if k not in TRAINING_ONLY}
    first, recurrent = tensors.get("lstm.weight_ih_l0"), tensors.get("lstm.weight_hh_l0")
    if first is None or recurrent is None or first.ndim != 2 or recurrent.ndim != 2 \
            or "linear.weight" not in tensors or tensors["linear.weight"].ndim != 2:
        raise CheckpointError(f"{path}: not a GE2E encoder: no lstm.weight_ih_l0 / lstm.weight_hh_l0 / "
                              f"linear.weight matrices among {', '.join(sorted(map(str, state))[:8])}")
    layers = layer_count((k.rsplit("_l", 1)[1] for k in tensors if k.startswith("lstm.weight_ih_l")), len(tensors),
                         path, "GE2E")
    sizes = (first.shape[1], recurrent.shape[1], layers, tensors["linear.weight"].shape[0])
    want = expected_shapes(*sizes)
    missing = sorted(set(want) - set(tensors))
    unexpected = sorted((set(tensors) - set(want)) | set(others))
    misshaped = sorted(f"{k} {tuple(tensors[k].shape)} (expected {want[k]})"
                       for k in want if k in tensors and tuple(tensors[k].shape) != want[k])
    problems = [f"{what}: {', '.join(names)}" for what, names in
                (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)) if names]
    if problems:
        raise CheckpointError(f"{path}: not a GE2E encoder: " + "; ".join(problems))
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, sizes
