"""Models by name: ``@register("name")`` on a Featurizer subclass adds it to the table.

The CLI takes its ``--model`` choices from here. Model modules are imported lazily by name
(_MODULES), so listing models never imports a framework.
"""

import importlib
import inspect

from speech_reps.errors import ConfigError

# name -> module that defines it; importing the module runs its @register.
_MODULES = {
    "fbank": "speech_reps.models.kaldi_features",
    "mfcc": "speech_reps.models.kaldi_features",
    "decoar": "speech_reps.models.decoar",
    "decoar2": "speech_reps.models.decoar2",
    "bertphone": "speech_reps.models.bertphone",
    "wav2vec": "speech_reps.models.wav2vec",
    "wav2vec2": "speech_reps.models.wav2vec2",
    "hubert": "speech_reps.models.wav2vec2",
    "trill": "speech_reps.models.trill",
    "trill-distilled": "speech_reps.models.trill",
    "frill": "speech_reps.models.trill",
    "ge2e": "speech_reps.models.ge2e",
}
# how a from_options keyword is spelled on the command line, where it differs
_FLAGS = {"feature_config": "--fbank-config", "backend": "--fbank-backend"}
_REGISTRY = {}


def register(name):
    def decorate(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name '{name}' registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def model_names():
    return sorted(_MODULES)


def get_model_class(name):
    if name in _REGISTRY:  # also models registered outside the toolkit (bench/null_model.py)
        return _REGISTRY[name]
    if name not in _MODULES:
        raise ConfigError(f"unknown model '{name}' (available: {', '.join(model_names())})")
    importlib.import_module(_MODULES[name])
    return _REGISTRY[name]


def create(name, **options):
    """Build model ``name`` from its options (None values mean "not given")."""
    cls = get_model_class(name)
    options = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(cls.from_options).parameters
    unknown = [k for k in options if k not in accepted]
    if unknown:
        flags = ", ".join(_FLAGS.get(k, "--" + k.replace("_", "-")) for k in unknown)
        raise ConfigError(f"model {name} does not take {flags}")
    return cls.from_options(**options)
