"""PyTorch checkpoints, unpickled so that a file can never run code.

Two ways, both refusing any global outside an allow-list:
  ``load_weights_only``  torch's own ``weights_only`` unpickler (tensors and plain containers,
                         plus argparse.Namespace), for plain state dicts (DeCoAR, GE2E);
  ``load_restricted``    our unpickler for fairseq checkpoints, whose configs are omegaconf
                         containers: those become stubs (fairseq.py turns them into plain dicts);
                         otherwise only torch's tensor/storage rebuild functions, OrderedDict,
                         argparse.Namespace and builtin containers and values are allowed.
A damaged file is a WeightsError naming it, whatever the unpickler or torch raised.
"""

import argparse
import collections
import pickle
import warnings
from types import SimpleNamespace

from speech_reps.models.formats import WeightsError, first_line, one_line


def load_weights_only(path):
    """``torch.load(path)`` of tensors and plain containers only (``weights_only``). torch's
    warnings about odd pickle protocols in a damaged file are silenced: the error says what is wrong."""
    import torch

    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError names a refused global; the others: a damaged file
        message = str(e)
        if "Unsupported global" in message:
            refused = message[message.index("Unsupported global"):].splitlines()[0]
            raise WeightsError(f"{path}: cannot load as a PyTorch checkpoint without running pickled code: "
                               f"{refused}") from None
        cause = next((line for line in message.splitlines() if line.startswith("WeightsUnpickler error")),
                     first_line(e))
        raise WeightsError(f"{path}: cannot load as a PyTorch checkpoint (a damaged or foreign file): {cause}") from None


def tensors_as_numpy(state, path):
    """({name: ndarray} of the tensors of ``state``, [names of its other values])."""
    import torch

    tensors, others = {}, []
    for name, value in state.items():
        if not isinstance(value, torch.Tensor) or not isinstance(name, str):
            others.append(str(name))
            continue
        if not (value.dtype.is_floating_point or value.dtype in (torch.int32, torch.int64, torch.bool)):
            raise WeightsError(f"{path}: tensor {name} has dtype {value.dtype}, not a weight type")
        value = value.detach().cpu()
        tensors[name] = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return tensors, others


class OmegaConfStub:
    """Holds the pickled state of an omegaconf node or container, whatever its class."""

    def __init__(self, *args, **kwargs):
        self._args = args

    def __setstate__(self, state):
        self._state = state

    def __call__(self, *args, **kwargs):  # enum flags and typing objects are pickled as calls
        return self


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
        return OmegaConfStub
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


def load_restricted(path, kind="fairseq checkpoint"):
    """The object of a torch pickle, unpickled with the allow-list above (omegaconf containers
    become OmegaConfStub)."""
    import torch

    try:
        # weights_only=False only lets our own unpickler run: it resolves nothing outside the
        # allow-list above (torch's weights_only mode could not map omegaconf to stubs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged file's odd pickle protocol: the error says enough
            return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED)
    except pickle.UnpicklingError as e:
        if str(e).startswith("refusing to load global"):
            raise WeightsError(f"{path}: {e}; not loading a checkpoint that would run code") from None
        raise WeightsError(f"{path}: cannot read as a {kind} (corrupt?): {one_line(e)}") from None
    except Exception as e:  # a damaged file fails in every way the unpickler and torch can
        raise WeightsError(f"{path}: cannot read as a {kind} (corrupt?): {first_line(e)}") from None
