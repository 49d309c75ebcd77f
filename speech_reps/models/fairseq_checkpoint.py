"""fairseq checkpoints without fairseq: a restricted unpickler and plain-dict configs.

A fairseq checkpoint is a torch pickle ``{'args': argparse.Namespace | None, 'cfg': dict |
omegaconf.DictConfig | None, 'model': state_dict, ...}``. It is unpickled with an allow-list:
torch's tensor/storage rebuild functions, OrderedDict, argparse.Namespace, and omegaconf's
containers, the latter turned into stubs that become plain dicts. Any other global (a function
that would run, a class from an unknown module) is refused, so an untrusted file cannot run code.
"""

import argparse
import collections
import os
import pickle
import warnings
from types import SimpleNamespace

from speech_reps.errors import ConfigError


class FairseqCheckpointError(ConfigError):
    pass


class _OmegaConfStub:
    """Holds the pickled state of an omegaconf node or container, whatever its class."""

    def __init__(self, *args, **kwargs):
        self._args = args

    def __setstate__(self, state):
        self._state = state

    def __call__(self, *args, **kwargs):  # enum flags and typing objects are pickled as calls
        return self


def _plain(obj):
    """omegaconf stubs, Namespaces and containers -> plain dicts, lists and values."""
    if isinstance(obj, _OmegaConfStub):
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


_PLAIN_TYPES = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bool", "bytes",
                "slice", "complex", "long"}


def _allowed(module, name):
    import torch

    if module == "collections" and name in ("OrderedDict", "defaultdict"):
        return getattr(collections, name)
    if module == "argparse" and name == "Namespace":
        return argparse.Namespace
    if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_tensor"):
        return getattr(torch._utils, name)
    if module == "torch" and (name.endswith("Storage") or name in ("Size", "device", "float32", "float16",
                                                                   "bfloat16", "int64", "float64")):
        return getattr(torch, name)
    if module == "torch.storage" and name in ("UntypedStorage", "TypedStorage"):
        return getattr(torch.storage, name)
    if module.startswith("omegaconf") or (module == "typing" and name == "Any") or module == "enum":
        return _OmegaConfStub
    if module in ("builtins", "__builtin__") and name in _PLAIN_TYPES:  # containers and values only
        return int if name == "long" else getattr(__import__("builtins"), name)
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        found = _allowed(module, name)
        if found is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return found


# torch.load(pickle_module=...) takes any object with Unpickler and load
_RESTRICTED = SimpleNamespace(Unpickler=_RestrictedUnpickler, load=lambda f, **kw: _RestrictedUnpickler(f, **kw).load(),
                              __name__="speech_reps_restricted_pickle")


def read_checkpoint(path):
    """The checkpoint dict of a torch pickle holding a 'model' state dict, unpickled with the
    allow-list (omegaconf containers become plain dicts later, in ``_plain``)."""
    import torch

    try:
        # weights_only=False only lets our own unpickler run: it resolves nothing outside the
        # allow-list above (torch's weights_only mode could not map omegaconf to stubs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged file's odd pickle protocol: the error says enough
            ckpt = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED)
    except pickle.UnpicklingError as e:
        if str(e).startswith("refusing to load global"):
            raise FairseqCheckpointError(f"{path}: {e}; not loading a checkpoint that would run code") from None
        raise FairseqCheckpointError(f"{path}: cannot read as a fairseq checkpoint (corrupt?): {e}") from None
    except Exception as e:  # a damaged file fails in every way the unpickler and torch can
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise FairseqCheckpointError(f"{path}: cannot read as a fairseq checkpoint (corrupt?): {first}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise FairseqCheckpointError(f"{path}: not a fairseq checkpoint (no 'model' state dict)")
    odd = [str(k) for k, v in ckpt["model"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if odd:
        raise FairseqCheckpointError(f"{path}: not a fairseq checkpoint: its state dict holds non-tensors "
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
        raise FairseqCheckpointError(f"{path}: no model configuration ('cfg' or 'args') in the checkpoint")
    return config, ckpt["model"]


def model_config(config, defaults, path, unsupported=()):
    """The model section with fairseq's defaults for keys old checkpoints lack.

    ``unsupported``: (key, supported value, why) triples; another value is a clear error.
    """
    cfg = {**defaults, **{k: v for k, v in config["model"].items() if v is not None}}
    for key, ok, why in unsupported:
        if cfg.get(key, ok) != ok:
            raise FairseqCheckpointError(f"{path}: {key}={cfg[key]!r} is not supported ({why})")
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
            raise FairseqCheckpointError(f"{path}: its config describes a model of {numel} parameters, more "
                                         f"than the file's {os.path.getsize(path)} bytes can hold")
        return net_class(cfg)
    except FairseqCheckpointError:
        raise
    except Exception as e:  # a damaged config: odd types and values fail in many ways
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise FairseqCheckpointError(f"{path}: its config does not describe a model this port can build: "
                                     f"{first}") from None


def load_state_strict(net, state, ignored_prefixes, path):
    """Load ``state`` into ``net``; every tensor the net has must be there with its shape, and
    every other tensor must be a known training-only one (``ignored_prefixes``)."""
    import torch

    state = {_weight_norm_name(k): v for k, v in state.items()}
    wanted = net.state_dict()
    used = {k: v for k, v in state.items() if not k.startswith(tuple(ignored_prefixes))}
    missing = sorted(set(wanted) - set(used))
    unexpected = sorted(set(used) - set(wanted))
    misshaped = sorted(f"{k} {tuple(used[k].shape)} (expected {tuple(wanted[k].shape)})"
                       for k in wanted if k in used and used[k].shape != wanted[k].shape)
    if missing or unexpected or misshaped:
        parts = [f"{label}: {', '.join(items)}" for label, items in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)) if items]
        raise FairseqCheckpointError(f"{path}: does not match the model its config describes: " + "; ".join(parts))
    net.load_state_dict({k: v.to(torch.float32) for k, v in used.items()}, strict=True)


def _weight_norm_name(key):
    # torch's newer parametrized weight_norm names the same two tensors differently
    return key.replace("parametrizations.weight.original0", "weight_g").replace(
        "parametrizations.weight.original1", "weight_v")
