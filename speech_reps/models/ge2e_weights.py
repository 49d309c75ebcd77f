"""GE2E encoder weights from a resemblyzer checkpoint (formats/resemblyzer.py reads it).

The check is the strict loader's: every tensor of the encoder must be there with its shape, and
anything else is an error — except the GE2E loss's learned scale and offset
(``similarity_weight``, ``similarity_bias``), used only in training.
"""

from typing import NamedTuple

import numpy as np

from speech_reps.models.formats import WeightsError
from speech_reps.models.formats.gluon import layer_count
from speech_reps.models.formats.resemblyzer import installed_weights, read_model_state  # noqa: F401
from speech_reps.models.formats.strict import check_tensors
from speech_reps.models.formats.torch_pickle import tensors_as_numpy

TRAINING_ONLY = ("similarity_weight", "similarity_bias")


class GE2ESizes(NamedTuple):
    n_mels: int
    hidden: int
    layers: int
    embedding: int


def expected_shapes(n_mels, hidden, layers, embedding):
    shapes = {"linear.weight": (embedding, hidden), "linear.bias": (embedding,)}
    for k in range(layers):
        shapes.update({f"lstm.weight_ih_l{k}": (4 * hidden, n_mels if k == 0 else hidden),
                       f"lstm.weight_hh_l{k}": (4 * hidden, hidden),
                       f"lstm.bias_ih_l{k}": (4 * hidden,),
                       f"lstm.bias_hh_l{k}": (4 * hidden,)})
    return shapes


def load_ge2e_weights(path):
    """({name: float32 ndarray}, GE2ESizes) after the strict check."""
    state = read_model_state(path)
    tensors, others = tensors_as_numpy(state, path)
    tensors = {k: v for k, v in tensors.items() if k not in TRAINING_ONLY}
    first, recurrent = tensors.get("lstm.weight_ih_l0"), tensors.get("lstm.weight_hh_l0")
    if first is None or recurrent is None or first.ndim != 2 or recurrent.ndim != 2 \
            or "linear.weight" not in tensors or tensors["linear.weight"].ndim != 2:
        raise WeightsError(f"{path}: not a GE2E encoder: no lstm.weight_ih_l0 / lstm.weight_hh_l0 / "
                           f"linear.weight matrices among {', '.join(sorted(map(str, state))[:8])}")
    layers = layer_count((k.rsplit("_l", 1)[1] for k in tensors if k.startswith("lstm.weight_ih_l")), len(tensors),
                         path, "GE2E")
    sizes = GE2ESizes(first.shape[1], recurrent.shape[1], layers, tensors["linear.weight"].shape[0])
    check_tensors(path, tensors, expected_shapes(*sizes), "not a GE2E encoder", others)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, sizes
