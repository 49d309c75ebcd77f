"""Options shared by steps/featurize.py and ``speech-reps featurize``, in Kaldi's style:
``--name value``, booleans written ``true``/``false``."""

import argparse
import logging
import math

from speech_reps.kaldi.audio import DEFAULT_PIPE_TIMEOUT
from speech_reps.models.options import OPTIONS, layer_list, str2bool  # noqa: F401  (the CLI's types)
from speech_reps.models.registry import all_options, model_names, specs

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


class OneLineErrors(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line naming the program (Kaldi's tools print
    one line too; a screen of usage hides the cause, e.g. in featurize.sh's console)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def positive_seconds(text):
    """A finite number of seconds greater than 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got '{text}'")
    return value


def whole_number(minimum):
    """An argparse type: an integer of at least ``minimum``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got '{text}'")
        return value
    return parse


def fraction(text):
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got '{text}'")
    return value


def model_option_table():
    """[(Option, [models taking it])] of every declared model: the shared options in OPTIONS'
    order, then models' own."""
    table = all_options()
    order = list(OPTIONS) + [name for name in table if name not in OPTIONS]
    return [table[name] for name in order if name in table]


def _option_help(option, models):
    """The option's help, with the models that take it (when not all do) and each one's values."""
    notes = {s.name: s.option_notes[option.name] for s in specs(models) if option.name in s.option_notes}
    text = option.help
    if notes:
        text += ": " + "; ".join(f"{m}: {v}" for m, v in notes.items())
    if len(models) < len(model_names()):
        text += f" [{', '.join(models)}]"
    return text.replace("%", "%%")  # argparse formats help with %


def add_model_args(parser):
    """--model, and every option of the declared models (models/declaration.py)."""
    parser.add_argument("--model", default="fbank", choices=model_names(),
                        help="representation to compute (default: %(default)s; speech-reps models lists them)")
    for option, models in model_option_table():
        parser.add_argument(option.cli_flag, dest=option.dest, type=option.type, choices=option.choices,
                            metavar=option.metavar, default=None, help=_option_help(option, models))
    add_audio_args(parser)


def add_audio_args(parser):
    """How audio is read: options of every step that reads a data dir's audio."""
    parser.add_argument("--allow-resample", type=str2bool, default=False, metavar="true|false",
                        help="resample audio whose rate differs from the front end's, with soxr "
                             "(default: false: such audio is an error)")
    parser.add_argument("--channel", type=int, default=None, metavar="N",
                        help="channel of multi-channel audio to use, from 0 (default: audio must be mono)")
    parser.add_argument("--pipe-timeout", type=positive_seconds, default=DEFAULT_PIPE_TIMEOUT, metavar="SECONDS",
                        help="a 'cmd |' of wav.scp that runs longer than this for one recording is killed and "
                             "its utterances fail (default: %(default)g)")


def model_options(args):
    """The options ``registry.create`` takes, from parsed arguments (None: not given)."""
    return {option.name: getattr(args, option.dest) for option, _ in model_option_table()}


def setup_logging(verbose=False):
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT)
