"""DeCoAR's weight files: the original MXNet ``.params`` or the PyTorch ``checkpoint_decoar.pt``.

Both are mapped onto one canonical set of names (the PyTorch port's, decoar_net.py):
  proj.weight (H, in), proj.bias (H,)
  {forward,backward}_lstm.{weight_ih,weight_hh,bias_ih,bias_hh}_l<K>  (4H, in|H), (4H,)
Gluon's LSTM gate order (i, f, c, o) is PyTorch's (i, f, g, o), so tensors copy unchanged.
The formats are read by models/formats/; the check is the strict loader's (every missing,
unexpected or mis-shaped tensor in one error).
"""

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from speech_reps.models.formats import WeightsError
from speech_reps.models.formats.gluon import canonicalize, layer_count
from speech_reps.models.formats.mxnet import read_params
from speech_reps.models.formats.strict import check_tensors
from speech_reps.models.formats.torch_pickle import load_weights_only, tensors_as_numpy

_GATE = {"i2h_weight": "weight_ih", "h2h_weight": "weight_hh", "i2h_bias": "bias_ih", "h2h_bias": "bias_hh"}
_DIR = {"forward": "forward", "backward": "backward", "0": "forward", "1": "backward"}
# (pattern anchored at the end of a name, function from match to canonical name)
_MXNET = [
    (re.compile(r"(?:encoder\.|dense0_)(weight|bias)$"), lambda m: f"proj.{m[1]}"),
    (re.compile(r"rnn_(forward|backward)\._unfused\.(\d+)\.(i2h_weight|h2h_weight|i2h_bias|h2h_bias)$"),
     lambda m: f"{_DIR[m[1]]}_lstm.{_GATE[m[3]]}_l{m[2]}"),
    (re.compile(r"rnn_(forward|backward)\.l(\d+)_(i2h_weight|h2h_weight|i2h_bias|h2h_bias)$"),
     lambda m: f"{_DIR[m[1]]}_lstm.{_GATE[m[3]]}_l{m[2]}"),
    (re.compile(r"lstm([01])_l(\d+)_(i2h_weight|h2h_weight|i2h_bias|h2h_bias)$"),
     lambda m: f"{_DIR[m[1]]}_lstm.{_GATE[m[3]]}_l{m[2]}"),
]
_TORCH = [
    (re.compile(r"post_extract_proj\.(weight|bias)$"), lambda m: f"proj.{m[1]}"),
    (re.compile(r"(forward|backward)_lstm\.((?:weight|bias)_(?:ih|hh)_l\d+)$"), lambda m: f"{m[1]}_lstm.{m[2]}"),
]


class DeCoARSizes(NamedTuple):
    input_dim: int  # fbank bins
    hidden: int  # LSTM units per direction (the output is 2 x hidden)
    layers: int


def expected_shapes(input_dim, hidden, layers):
    shapes = {"proj.weight": (hidden, input_dim), "proj.bias": (hidden,)}
    for d in ("forward", "backward"):
        for k in range(layers):
            shapes.update({f"{d}_lstm.weight_ih_l{k}": (4 * hidden, hidden),
                           f"{d}_lstm.weight_hh_l{k}": (4 * hidden, hidden),
                           f"{d}_lstm.bias_ih_l{k}": (4 * hidden,),
                           f"{d}_lstm.bias_hh_l{k}": (4 * hidden,)})
    return shapes


def check_and_size(weights, unexpected, path):
    """The DeCoARSizes of canonical ``weights`` after the strict check of every tensor."""
    proj = weights.get("proj.weight")
    if proj is None or proj.ndim != 2:
        raise WeightsError(f"{path}: no DeCoAR input projection (encoder.weight / dense0_weight / "
                           f"post_extract_proj.weight) found; {len(weights) + len(unexpected)} tensors: "
                           f"{', '.join(sorted(unexpected)[:8])}")
    hidden, input_dim = proj.shape
    layers = layer_count((n.rsplit("_l", 1)[1] for n in weights if "_lstm." in n), len(weights), path, "DeCoAR")
    if layers < 1:
        raise WeightsError(f"{path}: not a DeCoAR encoder: no LSTM layers")
    check_tensors(path, weights, expected_shapes(input_dim, hidden, layers), "not a DeCoAR encoder", unexpected)
    return DeCoARSizes(input_dim, hidden, layers)


def load_decoar_weights(path):
    """(canonical {name: float32 ndarray}, DeCoARSizes, format) of a DeCoAR file."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == b"PK\x03\x04" or head[:2] == b"\x80\x02":  # torch zip or legacy pickle
        ckpt = load_weights_only(path)
        state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise WeightsError(f"{path}: expected a dict with a 'model' state dict, found {type(ckpt).__name__}")
        tensors, non_tensors = tensors_as_numpy(state, path)
        weights, unexpected = canonicalize(tensors, _TORCH, path, "DeCoAR")
        unexpected += non_tensors
        fmt = "pytorch"
    else:
        weights, unexpected = canonicalize(read_params(path), _MXNET, path, "DeCoAR")
        fmt = "mxnet"
    sizes = check_and_size(weights, unexpected, path)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}, sizes, fmt
