"""DeCoAR weights from the original MXNet ``.params`` or the PyTorch ``checkpoint_decoar.pt``.

Both are mapped onto one canonical set of names (the PyTorch port's):
  proj.weight (H, in), proj.bias (H,)
  {forward,backward}_lstm.{weight_ih,weight_hh,bias_ih,bias_hh}_l<K>  (4H, in|H), (4H,)
Gluon's LSTM gate order (i, f, c, o) is PyTorch's (i, f, g, o), so tensors copy unchanged.
Loading is strict: a missing, unexpected or mis-shaped tensor is an error that lists them all.
"""

import argparse
import re
import warnings
from pathlib import Path

import numpy as np

from speech_reps.errors import ConfigError
from speech_reps.models.mxnet_params import ParamsFormatError, read_params

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


class CheckpointError(ConfigError):
    pass


def first_line(error):
    """The first line of an exception's message (its type's name when it has none)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def torch_load(path, error=CheckpointError):
    """``torch.load(path)`` of tensors and plain containers only (``weights_only``); anything
    else, a corrupt file included, is ``error``. torch's warnings about odd pickle protocols in a
    damaged file are silenced: the error says what is wrong."""
    import torch

    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError names a refused global; the others: a damaged file
        message = str(e)
        if "Unsupported global" in message:
            refused = message[message.index("Unsupported global"):].splitlines()[0]
            raise error(f"{path}: cannot load as a PyTorch checkpoint without running pickled code: "
                        f"{refused}") from None
        cause = next((line for line in message.splitlines() if line.startswith("WeightsUnpickler error")),
                     first_line(e))
        raise error(f"{path}: cannot load as a PyTorch checkpoint (a damaged or foreign file): {cause}") from None


def tensors_as_numpy(state, path, error=CheckpointError):
    """({name: ndarray} of the tensors of ``state``, [names of its other values])."""
    import torch

    tensors, others = {}, []
    for name, value in state.items():
        if not isinstance(value, torch.Tensor) or not isinstance(name, str):
            others.append(str(name))
            continue
        if not (value.dtype.is_floating_point or value.dtype in (torch.int32, torch.int64, torch.bool)):
            raise error(f"{path}: tensor {name} has dtype {value.dtype}, not a weight type")
        value = value.detach().cpu()
        tensors[name] = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return tensors, others


def layer_count(indices, num_tensors, path, model):
    """1 + the largest layer index in ``indices`` (strings of digits from tensor names). More
    layers than tensors cannot be: a damaged name, refused before anything is sized by it."""
    layers = 1 + max((int(i) for i in indices), default=-1)
    if layers > num_tensors:
        raise CheckpointError(f"{path}: not a {model} model: a tensor of layer {layers - 1}, "
                              f"among {num_tensors} tensors")
    return layers


def expected_shapes(input_dim, hidden, layers):
    shapes = {"proj.weight": (hidden, input_dim), "proj.bias": (hidden,)}
    for d in ("forward", "backward"):
        for k in range(layers):
            shapes.update({f"{d}_lstm.weight_ih_l{k}": (4 * hidden, hidden),
                           f"{d}_lstm.weight_hh_l{k}": (4 * hidden, hidden),
                           f"{d}_lstm.bias_ih_l{k}": (4 * hidden,),
                           f"{d}_lstm.bias_hh_l{k}": (4 * hidden,)})
    return shapes


def canonicalize(tensors, patterns, path, model="DeCoAR"):
    """Rename to canonical names; one shared leading prefix (e.g. 'decoar0_') is allowed.
    Returns ({canonical: tensor}, [names no pattern matched])."""
    out, prefixes, unexpected, sources = {}, set(), [], {}
    for name, value in tensors.items():
        for pattern, canonical in patterns:
            m = pattern.search(name)
            if m:
                prefixes.add(name[:m.start()])
                target = canonical(m)
                if target in sources:
                    raise CheckpointError(f"{path}: {sources[target]} and {name} both read as {target}; "
                                          f"not one {model} model")
                sources[target] = name
                out[target] = value
                break
        else:
            unexpected.append(name)
    if len(prefixes) > 1:
        raise CheckpointError(f"{path}: tensor names mix prefixes {sorted(prefixes)}; not one {model} model")
    return out, unexpected


def check_and_size(weights, unexpected, path):
    """(input_dim, hidden, layers) after a strict check of every tensor."""
    proj = weights.get("proj.weight")
    if proj is None or proj.ndim != 2:
        raise CheckpointError(f"{path}: no DeCoAR input projection (encoder.weight / dense0_weight / "
                              f"post_extract_proj.weight) found; {len(weights) + len(unexpected)} tensors: "
                              f"{', '.join(sorted(unexpected)[:8])}")
    hidden, input_dim = proj.shape
    layers = layer_count((n.rsplit("_l", 1)[1] for n in weights if "_lstm." in n), len(weights), path, "DeCoAR")
    want = expected_shapes(input_dim, hidden, layers)
    missing = sorted(set(want) - set(weights))
    misshaped = sorted(f"{n} {tuple(weights[n].shape)} (expected {want[n]})"
                       for n in want if n in weights and tuple(weights[n].shape) != want[n])
    problems = []
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected: {', '.join(sorted(unexpected))}")
    if misshaped:
        problems.append(f"wrong shape: {', '.join(misshaped)}")
    if layers < 1:
        problems.append("no LSTM layers")
    if problems:
        raise CheckpointError(f"{path}: not a DeCoAR encoder: " + "; ".join(problems))
    return input_dim, hidden, layers


def _torch_state_dict(path):
    ckpt = torch_load(path)
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict with a 'model' state dict, found {type(ckpt).__name__}")
    return tensors_as_numpy(state, path)


def load_decoar_weights(path):
    """(canonical {name: float32 ndarray}, (input_dim, hidden, layers), format) of a DeCoAR file."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == b"PK\x03\x04" or head[:2] == b"\x80\x02":  # torch zip or legacy pickle
        tensors, non_tensors = _torch_state_dict(path)
        weights, unexpected = canonicalize(tensors, _TORCH, path)
        unexpected += non_tensors
        fmt = "pytorch"
    else:
        try:
            tensors = read_params(path)
        except ParamsFormatError as e:
            raise CheckpointError(str(e)) from None
        weights, unexpected = canonicalize(tensors, _MXNET, path)
        fmt = "mxnet"
    sizes = check_and_size(weights, unexpected, path)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}, sizes, fmt
