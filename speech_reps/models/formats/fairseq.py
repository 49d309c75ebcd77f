"""fairseq checkpoints without fairseq: unpickled with torch_pickle's allow-list, configs as plain dicts.

A fairseq checkpoint is a torch pickle ``{'args': argparse.Namespace | None, 'cfg': dict |
omegaconf.DictConfig | None, 'model': state_dict, ...}``. omegaconf's containers arrive as
stubs and become plain dicts here; any other global is refused (torch_pickle.py), so an
untrusted file cannot run code. The state dict is loaded with strict.load_into.
"""

import argparse
import os

from speech_reps.models.formats import WeightsError, first_line
from speech_reps.models.formats.strict import allocated
from speech_reps.models.formats.torch_pickle import OmegaConfStub, load_restricted




def _plain(obj):
    """omegaconf stubs, Namespaces and containers -> plain dicts, lists and values."""
    if isinstance(obj, OmegaConfStub):
        state = getattr(obj, "_state", None)
        if isinstance(state, dict) and "_content" in state:
            return _plain(state["_content"])
        if isinstance(state, dict) and "_val" in state:
            return _plain(state["_val"])
        return None
    if isinstance(obj, argparse.Namespace):
        return {k: _plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def read_checkpoint(path):
    """The checkpoint dict of a torch pickle holding a 'model' state dict, unpickled with the
    allow-list (omegaconf containers become plain dicts later, in ``_plain``)."""
    import torch

    ckpt = load_restricted(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise WeightsError(f"{path}: not a fairseq checkpoint (no 'model' state dict)")
    odd = [str(k) for k, v in ckpt["model"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if odd:
        raise WeightsError(f"{path}: not a fairseq checkpoint: its state dict holds non-tensors "
                           f"({', '.join(odd[:4])})")
    return ckpt


def load_fairseq_checkpoint(path):
    """(config dict with 'model' and 'task' sections, {name: tensor} state dict) of a fairseq file."""
    ckpt = read_checkpoint(path)
    cfg = _plain(ckpt.get("cfg"))
    args = _plain(ckpt.get("args"))
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        config = {"model": cfg["model"], "task": cfg.get("task") or {}}
    elif isinstance(args, dict):  # old checkpoints: one flat Namespace for model and task
        config = {"model": args, "task": args}
    else:
        raise WeightsError(f"{path}: no model configuration ('cfg' or 'args') in the checkpoint")
    return config, ckpt["model"]


def model_config(config, defaults, path, unsupported=()):
    """The model section with fairseq's defaults for keys old checkpoints lack.

    ``unsupported``: (key, supported value, why) triples; another value is a clear error.
    """
    cfg = {**defaults, **{k: v for k, v in config["model"].items() if v is not None}}
    for key, ok, why in unsupported:
        if cfg.get(key, ok) != ok:
            raise WeightsError(f"{path}: {key}={cfg[key]!r} is not supported ({why})")
    return cfg


def build_net(net_class, cfg, path):
    """``net_class(cfg)``, where ``cfg`` comes from the checkpoint ``path``: the net is first built
    on torch's meta device (nothing allocated) and must not have more parameters than the file
    could hold, so that a damaged size in the config cannot exhaust memory; any error building it
    is one line naming the file."""
    import torch

    try:
        with torch.device("meta"):
            sized = net_class(cfg)
        numel = sum(t.numel() for t in list(sized.parameters()) + list(sized.buffers()))
        if 2 * numel > os.path.getsize(path):  # 2 bytes: the smallest float a checkpoint holds
            raise WeightsError(f"{path}: its config describes a model of {numel} parameters, more "
                               f"than the file's {os.path.getsize(path)} bytes can hold")
        return allocated(sized, lambda: net_class(cfg))  # strict loading fills it (formats/strict.py)
    except WeightsError:
        raise
    except Exception as e:  # a damaged config: odd types and values fail in many ways
        raise WeightsError(f"{path}: its config does not describe a model this port can build: "
                           f"{first_line(e)}") from None


def load_state_strict(net, state, ignored_prefixes, path):
    """Load a fairseq state dict into ``net`` (strict.load_into): every tensor the net has must be
    there with its shape, and every other tensor must be a known training-only one."""
    from speech_reps.models.formats.strict import load_into

    state = {_weight_norm_name(k): v for k, v in state.items()}
    load_into(net, state, path, "does not match the model its config describes", ignored=ignored_prefixes)


def _weight_norm_name(key):
    # torch's newer parametrized weight_norm names the same two tensors differently
    return key.replace("parametrizations.weight.original0", "weight_g").replace(
        "parametrizations.weight.original1", "weight_v")
