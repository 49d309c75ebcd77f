"""Small BERTphone weights in the original .params layouts, for tests (seeded, random)."""

import numpy as np

from decoar_files import write_params
from speech_reps.models.bertphone_checkpoint import expected_shapes

SMALL = dict(input_dim=120, units=48, hidden=96, layers=2, max_length=512)


def random_weights(seed=0, **sizes):
    sizes = {**SMALL, **sizes}
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in expected_shapes(**sizes).items():
        if "layer_norm.weight" in name:
            out[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            out[name] = (rng.standard_normal(shape) * (0.1 if len(shape) == 1 else 0.2)).astype(np.float32)
    return out


def _gluon_norm(name):
    return name.replace("layer_norm.weight", "layer_norm.gamma").replace("layer_norm.bias", "layer_norm.beta")


def gluon_names(weights, layout="legacy", prefix=""):
    """Canonical names -> the names collect_params().save ('legacy') or save_parameters
    ('structural') gives the original model."""
    out = {}
    for name, value in weights.items():
        if layout == "structural":
            new = _gluon_norm(name)
        elif name.startswith("embed."):
            new = "dense0_" + name.split(".")[1]
        elif name == "encoder.position_weight":
            new = "bertencoder0_position_weight"
        elif name.startswith("encoder.layer_norm."):
            new = "bertencoder0_bertlayernorm0_" + _gluon_norm(name).rsplit(".", 1)[1]
        else:
            _, _, i, *rest = _gluon_norm(name).split(".")
            part = ".".join(rest)
            part = (part.replace("attention_cell.proj_", "multiheadattentioncell0_")
                    .replace("ffn.ffn_", "bertpositionwiseffn0_ffn_")
                    .replace("ffn.layer_norm", "bertpositionwiseffn0_bertlayernorm0")
                    .replace("layer_norm", "bertlayernorm0").replace(".", "_"))
            new = f"bertencoder0_transformer{i}_{part}"
        out[prefix + new] = value
    return out


def write_bertphone(path, weights, layout="legacy", prefix=""):
    return write_params(path, gluon_names(weights, layout, prefix))
