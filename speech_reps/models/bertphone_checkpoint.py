"""BERTphone weights from the original MXNet/GluonNLP ``.params`` file, read with numpy.

The original featurizer loads the file with ``collect_params().load``, so its names are Gluon's
full parameter names; ``Block.save_parameters`` writes structural names instead. Both are
mapped explicitly onto the PyTorch port's names (speech_reps/models/bertphone_net.py), with
one shared leading prefix allowed (e.g. ``OpenSpeechModel_``):
  dense<N>_{weight,bias}                                  embed.{weight,bias}
  bertencoder<N>_position_weight                          encoder.position_weight
  bertencoder<N>_bertlayernorm<M>_{gamma,beta}            encoder.layer_norm.{weight,bias}
  bertencoder<N>_transformer<i>_
    multiheadattentioncell<M>_{query,key,value}_{weight,bias}   ...attention_cell.proj_{query,key,value}
    proj_{weight,bias}                                    ...proj
    bertlayernorm<M>_{gamma,beta}                         ...layer_norm
    bertpositionwiseffn<M>_ffn_{1,2}_{weight,bias}        ...ffn.ffn_{1,2}
    bertpositionwiseffn<M>_bertlayernorm<M>_{gamma,beta}  ...ffn.layer_norm
(``...`` = encoder.transformer_cells.<i>; structural names are the same path with dots, e.g.
``encoder.transformer_cells.0.attention_cell.proj_query.weight``, ``embed.weight``.)
Gluon's Dense weight is (out, in) like torch's Linear; tensors copy unchanged. The file is read
by models/formats/ and checked by the strict loader: missing, unexpected and mis-shaped tensors
are listed together in one error.
"""

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from speech_reps.models.formats import WeightsError
from speech_reps.models.formats.gluon import canonicalize, layer_count
from speech_reps.models.formats.mxnet import read_params
from speech_reps.models.formats.strict import check_tensors

_NORM = {"gamma": "weight", "beta": "bias", "weight": "weight", "bias": "bias"}
_CELL = "encoder.transformer_cells"
_LEGACY_CELL = r"bertencoder\d+_transformer(\d+)_"
_PATTERNS = [  # (pattern searched at the end of a name, canonical name of the match)
    (re.compile(_LEGACY_CELL + r"multiheadattentioncell\d+_(query|key|value)_(weight|bias)$"),
     lambda m: f"{_CELL}.{m[1]}.attention_cell.proj_{m[2]}.{m[3]}"),
    (re.compile(_LEGACY_CELL + r"proj_(weight|bias)$"), lambda m: f"{_CELL}.{m[1]}.proj.{m[2]}"),
    (re.compile(_LEGACY_CELL + r"bertpositionwiseffn\d+_ffn_([12])_(weight|bias)$"),
     lambda m: f"{_CELL}.{m[1]}.ffn.ffn_{m[2]}.{m[3]}"),
    (re.compile(_LEGACY_CELL + r"bertpositionwiseffn\d+_bertlayernorm\d+_(gamma|beta)$"),
     lambda m: f"{_CELL}.{m[1]}.ffn.layer_norm.{_NORM[m[2]]}"),
    (re.compile(_LEGACY_CELL + r"bertlayernorm\d+_(gamma|beta)$"),
     lambda m: f"{_CELL}.{m[1]}.layer_norm.{_NORM[m[2]]}"),
    (re.compile(r"bertencoder\d+_position_weight$"), lambda m: "encoder.position_weight"),
    (re.compile(r"bertencoder\d+_bertlayernorm\d+_(gamma|beta)$"), lambda m: f"encoder.layer_norm.{_NORM[m[1]]}"),
    (re.compile(r"dense\d+_(weight|bias)$"), lambda m: f"embed.{m[1]}"),
    # Block.save_parameters
    (re.compile(r"encoder\.transformer_cells\.(\d+)\.(attention_cell\.proj_(?:query|key|value)|proj|ffn\.ffn_[12])"
                r"\.(weight|bias)$"), lambda m: f"{_CELL}.{m[1]}.{m[2]}.{m[3]}"),
    (re.compile(r"encoder\.transformer_cells\.(\d+)\.(ffn\.layer_norm|layer_norm)\.(gamma|beta)$"),
     lambda m: f"{_CELL}.{m[1]}.{m[2]}.{_NORM[m[3]]}"),
    (re.compile(r"encoder\.position_weight$"), lambda m: "encoder.position_weight"),
    (re.compile(r"encoder\.layer_norm\.(gamma|beta)$"), lambda m: f"encoder.layer_norm.{_NORM[m[1]]}"),
    (re.compile(r"embed\.(weight|bias)$"), lambda m: f"embed.{m[1]}"),
]


class BERTphoneSizes(NamedTuple):
    input_dim: int  # stacked MFCC dims
    units: int  # the encoder's width (the output dim)
    hidden: int  # FFN units
    layers: int
    max_length: int  # learned positions


def expected_shapes(input_dim, units, hidden, layers, max_length):
    shapes = {"embed.weight": (units, input_dim), "embed.bias": (units,),
              "encoder.position_weight": (max_length, units),
              "encoder.layer_norm.weight": (units,), "encoder.layer_norm.bias": (units,)}
    for i in range(layers):
        cell = f"{_CELL}.{i}"
        for name in ("attention_cell.proj_query", "attention_cell.proj_key", "attention_cell.proj_value", "proj"):
            shapes.update({f"{cell}.{name}.weight": (units, units), f"{cell}.{name}.bias": (units,)})
        shapes.update({f"{cell}.ffn.ffn_1.weight": (hidden, units), f"{cell}.ffn.ffn_1.bias": (hidden,),
                       f"{cell}.ffn.ffn_2.weight": (units, hidden), f"{cell}.ffn.ffn_2.bias": (units,)})
        for norm in ("layer_norm", "ffn.layer_norm"):
            shapes.update({f"{cell}.{norm}.weight": (units,), f"{cell}.{norm}.bias": (units,)})
    return shapes


def _sizes(weights, path):
    embed, pos = weights.get("embed.weight"), weights.get("encoder.position_weight")
    ffn = weights.get(f"{_CELL}.0.ffn.ffn_1.weight")
    if embed is None or pos is None or ffn is None or embed.ndim != 2 or pos.ndim != 2 or ffn.ndim != 2:
        raise WeightsError(f"{path}: not a BERTphone model: the input Dense (dense0_weight / embed.weight), "
                           "the position weights or the first cell's FFN are missing or not matrices")
    layers = layer_count((n.split(".")[2] for n in weights if n.startswith(_CELL + ".")), len(weights), path,
                         "BERTphone")
    return BERTphoneSizes(input_dim=embed.shape[1], units=embed.shape[0], hidden=ffn.shape[0], layers=layers,
                          max_length=pos.shape[0])


def load_bertphone_weights(path, skip=()):
    """(canonical {name: float32 ndarray}, BERTphoneSizes).

    ``skip``: prefixes of the file's names of tensors to leave out, e.g. a training
    head; every other tensor must be one of the encoder's, and every encoder tensor must be there.
    """
    path = Path(path)
    tensors = read_params(path)
    skipped = [n for n in tensors if n.startswith(tuple(skip))]
    weights, unexpected = canonicalize({n: v for n, v in tensors.items() if n not in skipped},
                                       _PATTERNS, path, "BERTphone")
    sizes = _sizes(weights, path)
    want = expected_shapes(*sizes)
    check_tensors(path, weights, want, "not a BERTphone encoder", unexpected,
                  unexpected_hint=" (a training head can be left out with skip_tensors in conf/bertphone.yaml)")
    return {k: np.ascontiguousarray(weights[k], dtype=np.float32) for k in want}, sizes
