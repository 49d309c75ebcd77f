"""Model configs: a typed dataclass per model whose values come from YAML, every key checked.

The defaults are the toolkit's conf/<model>.yaml, and only there: the dataclass names the keys
(and their types), never their values. A user's ``--model-config`` file overrides the keys it
sets; the others keep the toolkit file's values.
"""

import copy
import dataclasses
import functools
import typing
from pathlib import Path

import yaml

from speech_reps.conf_dir import artifacts_dir, default_conf
from speech_reps.errors import ConfigError


@functools.lru_cache(maxsize=None)
def _read_yaml(path):
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read model config: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of options")
    return data


_PLAIN = {bool: (bool,), int: (int,), float: (int, float), str: (str,), dict: (dict,)}
_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", dict: "a mapping"}


def _checked(cls, path, data):
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{path}: unknown option(s) {', '.join(unknown)} (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():  # a plain-typed key: its YAML value of that type ("false" is a string)
        kind = hints.get(name)
        if kind in _PLAIN and value is not None and (
                not isinstance(value, _PLAIN[kind]) or (kind is not bool and isinstance(value, bool))):
            raise ConfigError(f"{path}: {name}: expected {_WORDS[kind]}, got {value!r}")
    return data


def toolkit_conf(name):
    """The toolkit's defaults of model ``name``: its declared conf file (conf/<name>.yaml)."""
    from speech_reps.models.registry import get_model_class

    try:
        path = get_model_class(name).spec.conf_path()
    except ConfigError:  # a config class used without a declared model (tests, tools)
        path = default_conf(f"{name}.yaml")
    return path


def load_config(cls, path=None, name=None):
    """An instance of dataclass ``cls``: the toolkit's conf/<name>.yaml, then the keys ``path``
    (a user's YAML file) sets. Unknown keys are an error (a typo must not be silently ignored)."""
    default_path = toolkit_conf(name)
    defaults = copy.deepcopy(_checked(cls, default_path, _read_yaml(str(default_path))))
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in defaults]
    if missing:  # a toolkit bug: conf/<name>.yaml is the one place the defaults are written
        raise ConfigError(f"{default_path}: missing option(s) {', '.join(missing)}")
    if path is not None:
        # uncached: a user's file may change between two models built in one process
        defaults.update(copy.deepcopy(_checked(cls, path, _read_yaml.__wrapped__(str(path)))))
    return cls(**defaults)


def default_weights(value):
    """A weights path named in a config file: absolute as it is; relative, under the artifacts
    location ($SPEECH_REPS_ARTIFACTS, else the toolkit's artifacts/), never the working directory."""
    path = Path(value)
    return path if path.is_absolute() else artifacts_dir() / path


def find_params(params, default, label, how):
    """The weights file: ``params`` if given (relative to the working directory), else the
    config's ``default`` (under the artifacts location); a missing one is an error saying how
    to get it (``how``: a sentence)."""
    path = Path(params) if params is not None else default_weights(default)
    if path.is_dir():
        raise ConfigError(f"{label} weights: {path} is a directory, not a file")
    if not path.is_file():
        raise ConfigError(f"{label} weights not found: {path}. {how}")
    return path


def dump_config(config):
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
