"""Model configs: a typed dataclass per model, read from ``conf/<model>.yaml`` with every key checked."""

import dataclasses
from pathlib import Path

import yaml

from speech_reps.conf_dir import default_conf
from speech_reps.errors import ConfigError


def load_config(cls, path=None, name=None):
    """An instance of dataclass ``cls`` from a YAML file (default: the toolkit's conf/<name>.yaml).

    Unknown keys are an error (a typo must not be silently ignored); missing keys keep defaults.
    """
    path = Path(path) if path is not None else default_conf(f"{name}.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read model config: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of options")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{path}: unknown option(s) {', '.join(unknown)} (known: {', '.join(fields)})")
    return cls(**data)


def find_params(params, default, label, how):
    """The weights file: ``params`` if given, else the config's ``default``; a missing one is an
    error saying how to get it (``how``: a sentence)."""
    path = Path(params if params is not None else default)
    if path.is_dir():
        raise ConfigError(f"{label} weights: {path} is a directory, not a file")
    if not path.is_file():
        raise ConfigError(f"{label} weights not found: {path}. {how}")
    return path


def dump_config(config):
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
