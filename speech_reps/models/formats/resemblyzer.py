"""resemblyzer's GE2E checkpoint (``{step, model_state, optimizer_state}``) and the wheel that
carries it.

The default file is the ``pretrained.pt`` inside the installed resemblyzer wheel, found through
the wheel's metadata so that resemblyzer itself is never imported (its ``__init__`` imports
librosa and webrtcvad, which speech-reps does not need).
"""

from pathlib import Path

from speech_reps.errors import ConfigError
from speech_reps.models.formats import WeightsError
from speech_reps.models.formats.torch_pickle import load_weights_only

RESEMBLYZER_PIN = "resemblyzer==0.1.4"


def installed_weights(sha256=None):
    """Path of resemblyzer's pretrained.pt in this environment; a ConfigError if it is not
    installed, or (``sha256`` given) if its digest is not that one."""
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
    if sha256 is not None:
        from speech_reps.download import sha

        digest = sha(path, "sha256")
        if digest != sha256:
            raise ConfigError(f"{path}: SHA-256 {digest}, expected the published {sha256} (resemblyzer "
                              f"{dist.version} is installed; the weights are {RESEMBLYZER_PIN}'s): "
                              f"pip install --no-deps --force-reinstall {RESEMBLYZER_PIN}")
    return path


def read_model_state(path):
    """The ``model_state`` dict of a resemblyzer checkpoint."""
    ckpt = load_weights_only(path)
    state = ckpt.get("model_state") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        have = sorted(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise WeightsError(f"{path}: expected resemblyzer's checkpoint, a dict with 'model_state'; found {have}")
    return state
