"""Build DeCoAR checkpoints in the original file formats, with seeded random weights.

MXNet .params are written in MXNet's NDArray list format (v2 arrays, dense float32), following
the layout documented in speech_reps/models/formats/mxnet.py; the parity test checks our reader
on files MXNet itself wrote. PyTorch checkpoints are {'model': state_dict, 'args': Namespace}.
"""

import argparse
import struct

import numpy as np

from speech_reps.models.decoar_checkpoint import expected_shapes

_GLUON = {"weight_ih": "i2h_weight", "weight_hh": "h2h_weight", "bias_ih": "i2h_bias", "bias_hh": "h2h_bias"}


def random_weights(input_dim=40, hidden=32, layers=2, seed=0):
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(hidden)
    return {name: rng.uniform(-scale, scale, shape).astype(np.float32)
            for name, shape in expected_shapes(input_dim, hidden, layers).items()}


def mxnet_names(weights, layout="structural", prefix=""):
    """Canonical names -> one of the Gluon layouts the reader accepts: "structural" (a Gluon
    block's save_parameters), "unfused" (its _unfused LSTM cells), "legacy" (the original file's
    dense0_/lstm0_ names)."""
    out = {}
    for name, value in weights.items():
        if name.startswith("proj."):
            part = name.split(".")[1]
            new = f"encoder.{part}" if layout != "legacy" else f"dense0_{part}"
        else:
            direction, rest = name.split("_lstm.")
            kind, layer = rest.rsplit("_l", 1)
            gluon = _GLUON[kind]
            if layout == "structural":
                new = f"rnn_{direction}.l{layer}_{gluon}"
            elif layout == "unfused":
                new = f"rnn_{direction}._unfused.{layer}.{gluon}"
            else:
                new = f"lstm{0 if direction == 'forward' else 1}_l{layer}_{gluon}"
        out[prefix + new] = value
    return out


def write_params(path, arrays):
    """An MXNet NDArray list file of float32 arrays."""
    with open(path, "wb") as f:
        f.write(struct.pack("<QQQ", 0x112, 0, len(arrays)))
        for value in arrays.values():
            value = np.ascontiguousarray(value, dtype="<f4")
            f.write(struct.pack("<IiI", 0xF993FAC9, 0, value.ndim))
            f.write(struct.pack(f"<{value.ndim}q", *value.shape))
            f.write(struct.pack("<iii", 1, 0, 0))  # cpu(0), float32
            f.write(value.tobytes())
        f.write(struct.pack("<Q", len(arrays)))
        for name in arrays:
            f.write(struct.pack("<Q", len(name.encode())) + name.encode())
    return path


def write_torch_checkpoint(path, weights, extra=None):
    import torch

    state = {}
    for name, value in weights.items():
        state[name.replace("proj.", "post_extract_proj.")] = torch.from_numpy(value.copy())
    state.update(extra or {})
    torch.save({"model": state, "args": argparse.Namespace(arch="decoar")}, path)
    return path
