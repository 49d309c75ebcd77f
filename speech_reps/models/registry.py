"""Models by name, from their declarations (models/declaration.py).

``@register(ModelSpec(...))`` on a Featurizer subclass declares a model. The toolkit's models
are found by importing the modules of this package (network files, ``*_net.py``, which import
the framework, and the ``formats`` package are not model modules); models of your own come from
the modules named in ``$SPEECH_REPS_MODEL_MODULES`` (comma-separated, importable). Model modules
import their framework inside their methods, so listing models never imports one.
"""

import importlib
import inspect
import os
import pkgutil

from speech_reps.errors import ConfigError
from speech_reps.models.declaration import ModelSpec

PLUGINS_ENV = "SPEECH_REPS_MODEL_MODULES"
_REGISTRY = {}  # name -> Featurizer class (its ``spec`` is the declaration)
_discovered = False
# helper modules of this package that never declare a model (imported by those that do); so are
# <model>_net.py (networks), <model>_checkpoint.py and <model>_weights.py (weight names and shapes)
_NOT_MODELS = {"base", "config", "declaration", "options", "registry", "layers", "torch_device", "ge2e_frontend",
               "fairseq_featurizer", "catalog", "bf16_products", "attention"}


def register(spec):
    """Class decorator: declare the model ``spec`` (a ModelSpec), built by the class."""
    if not isinstance(spec, ModelSpec):
        raise TypeError("register() takes the model's ModelSpec")

    def decorate(cls):
        if spec.name in _REGISTRY and _REGISTRY[spec.name] is not cls:
            raise ValueError(f"model name '{spec.name}' registered twice")
        accepted = set(inspect.signature(cls.from_options).parameters)
        declared = {o.name for o in spec.option_list()}
        if accepted != declared:  # the declaration is what the CLI offers: it must be what the model takes
            raise ValueError(f"model {spec.name}: declared options {sorted(declared)} differ from "
                             f"{cls.__name__}.from_options's {sorted(accepted)}")
        cls.name, cls.spec = spec.name, spec
        _REGISTRY[spec.name] = cls
        return cls

    return decorate


def _discover():
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module("speech_reps.models")
    for info in pkgutil.iter_modules(package.__path__):
        if info.ispkg or info.name in _NOT_MODELS or info.name.endswith(("_net", "_checkpoint", "_weights")):
            continue
        importlib.import_module(f"speech_reps.models.{info.name}")
    for module in _plugin_modules():
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ConfigError(f"${PLUGINS_ENV}: cannot import model module {module}: {e}") from None


def model_names():
    """Every declared model (the toolkit's and $SPEECH_REPS_MODEL_MODULES'), sorted."""
    _discover()
    return sorted(_REGISTRY)


def _plugin_modules():
    return [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]


def documented_model_names():
    """The models the README documents: the toolkit's and $SPEECH_REPS_MODEL_MODULES', sorted
    (not those a program registers for itself, such as the bench's ``null``)."""
    _discover()
    plugins = _plugin_modules()
    return sorted(n for n, cls in _REGISTRY.items()
                  if cls.__module__.startswith("speech_reps.models.") or cls.__module__ in plugins)


def specs(names=None):
    """The declarations of ``names`` (default: every model), in that order."""
    return [get_model_class(n).spec for n in (model_names() if names is None else names)]


def get_model_class(name):
    if name not in _REGISTRY:  # also models registered outside the toolkit (bench/null_model.py)
        _discover()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model '{name}' (available: {', '.join(model_names())})")
    return _REGISTRY[name]


def all_options():
    """{option name: (Option, [models taking it])} over every declared model, in declaration order."""
    seen = {}
    for spec in specs():
        for option in spec.option_list():
            known = seen.get(option.name)
            if known is not None and known[0] != option:
                raise ValueError(f"option {option.name} is declared differently by {spec.name} "
                                 f"and {', '.join(known[1])}")
            seen.setdefault(option.name, (option, []))[1].append(spec.name)
    return seen


def create(name, **options):
    """Build model ``name`` from its options (None values mean "not given")."""
    cls = get_model_class(name)
    options = {k: v for k, v in options.items() if v is not None}
    declared = {o.name: o for o in cls.spec.option_list()}
    unknown = [k for k in options if k not in declared]
    if unknown:
        flags = ", ".join(_flag(k) for k in unknown)
        raise ConfigError(f"model {name} does not take {flags}")
    return cls.from_options(**{k: _typed(declared[k], v) for k, v in options.items()})


def _typed(option, value):
    """A library caller's string value read as the command line reads it (``"false"`` is False,
    not a true string); other values as given."""
    if not isinstance(value, str) or option.type is None:
        return value
    import argparse

    try:
        return option.type(value)
    except (argparse.ArgumentTypeError, ValueError) as e:
        raise ConfigError(f"{option.cli_flag} {value!r}: {e}") from None


def _flag(name):
    found = all_options().get(name)
    return found[0].cli_flag if found else "--" + name.replace("_", "-")
