"""What a model declares about itself, once: its name, options, rates, sizes, weights and extras.

Every list of models (the registry, ``--model``'s choices, the options of steps/featurize.py and
so of steps/featurize.sh, ``speech-reps models``, utils/download_models.sh, the README's model
table, the bench) is read from these declarations; none is written out anywhere else.

A model module declares a model by decorating its Featurizer class::

    @register(ModelSpec(name="decoar", summary=..., options=("params", "config", ...), ...))
    class DeCoAR(Featurizer): ...

``options`` name entries of ``OPTIONS`` (the command-line options models share) or are
``Option``s of the model's own; their defaults are the model's conf/<name>.yaml (one source).
"""

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Option:
    """A keyword of ``from_options`` as it appears on the command line (``--flag value``)."""

    name: str  # the from_options keyword
    help: str
    type: object = None  # an argparse type; None: a string
    choices: tuple = None
    metavar: str = None
    flag: str = None  # default: --<name with dashes>

    @property
    def cli_flag(self):
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def dest(self):
        """The argparse destination (and steps/featurize.sh's variable) of the flag."""
        return self.cli_flag[2:].replace("-", "_")


@dataclass(frozen=True)
class WeightFile:
    """A published weights file: where it is fetched from and its SHA-256.

    ``sha256`` None: none is published; the first good download's digest is recorded beside
    the file (trust on first use) and later copies are checked against it.
    """

    file: str  # its name under the artifacts location
    url: str
    sha256: str = None
    download: str = None  # utils/download_models.sh's name for it (default: the model's name)
    zip_member: str = None  # the URL is a zip holding this member
    note: str = None  # e.g. where the URL is known to be offline
    in_wheel: str = None  # not downloaded: a pip requirement whose wheel carries the file (url: its page)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    summary: str  # the representation, one line (README's table)
    dim: str  # output dimension, as text: "2048", "768 (base), 1024 (large)"
    frame_shift: str  # as text: "10 ms"
    input_rate: int  # Hz of the audio the model expects by default
    input: str  # what the model needs, one line (README's table)
    options: tuple = ()  # names of OPTIONS entries, or Option
    weights: tuple = ()  # WeightFile, in order of preference for the default
    weights_from: str = None  # where weights come from when not a download (TF-Hub, a wheel)
    extras: tuple = ()  # optional Python packages it needs: "tensorflow", "webrtcvad (--trim-silence)"
    option_notes: dict = field(default_factory=dict)  # option name -> this model's values, for --help
    conf: str = None  # its conf file (default: the toolkit's conf/<name>.yaml; None for none)
    has_conf: bool = True

    def option_list(self):
        """The model's options as Option objects."""
        from speech_reps.models.options import OPTIONS

        return [o if isinstance(o, Option) else OPTIONS[o] for o in self.options]

    def conf_path(self):
        """Its defaults file (conf/<name>.yaml of the toolkit unless the declaration names one)."""
        if not self.has_conf:
            return None
        if self.conf is not None:
            return Path(self.conf)
        from speech_reps.conf_dir import default_conf

        return default_conf(f"{self.name}.yaml")

    def downloads(self):
        """[(utils/download_models.sh's name, WeightFile)] of the files the toolkit downloads."""
        return [(w.download or self.name, w) for w in self.weights if w.in_wheel is None]

    def download_names(self):
        return [name for name, _ in self.downloads()]

    def how_to_get(self):
        """A sentence saying how to get the weights (for a 'weights not found' error)."""
        ways = [f"'utils/download_models.sh {name}' ({w.note + ', ' if w.note else ''}from {w.url})"
                for name, w in self.downloads()]
        wheels = [f"'pip install --no-deps {w.in_wheel}'" for w in self.weights if w.in_wheel]
        if ways:
            return f"Download them with {' or '.join(ways)}, or pass a file with --params <file>"
        if wheels:
            return f"Install them with {' or '.join(wheels)}, or pass a file with --params <file>"
        return f"Pass them with --params <file>{'; ' + self.weights_from if self.weights_from else ''}"
