"""Options shared by steps/featurize.py and ``speech-reps featurize``, in Kaldi's style:
``--name value``, booleans written ``true``/``false``."""

import argparse
import logging
import math

from speech_reps.frontend import BACKENDS, CMVN_MODES
from speech_reps.kaldi.audio import DEFAULT_PIPE_TIMEOUT
from speech_reps.kaldi.options import parse_bool
from speech_reps.models.registry import model_names
from speech_reps.models.torch_device import DTYPES

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


class OneLineErrors(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line naming the program (Kaldi's tools print
    one line too; a screen of usage hides the cause, e.g. in featurize.sh's console)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def str2bool(text):
    """A ``true``/``false`` command-line value, read as Kaldi reads booleans."""
    value = parse_bool(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")
    return value


def layer_list(text):
    """``--layer N`` (an int), or ``N,M,...`` (a tuple: several layers from one pass)."""
    try:
        layers = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a layer number or numbers joined by commas, got '{text}'")
    return layers[0] if len(layers) == 1 else layers


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


def add_model_args(parser):
    parser.add_argument("--model", default="fbank", choices=model_names(),
                        help="representation to compute (default: %(default)s)")
    parser.add_argument("--fbank-config", default=None, metavar="KALDI_CONF",
                        help="Kaldi option file for the front end "
                             "(default: the toolkit's conf/fbank.conf; conf/mfcc.conf for mfcc)")
    parser.add_argument("--fbank-backend", default=None, choices=BACKENDS,
                        help="numpy: vectorised numpy; native: kaldi-native-fbank; torch: batched PyTorch, "
                             "on the model's device; kaldi: Kaldi's compute-*-feats on PATH "
                             "(default: numpy, torch when the model runs on a GPU)")
    parser.add_argument("--cmvn", default=None, choices=CMVN_MODES,
                        help="mean normalisation per utterance or per speaker (utt2spk) "
                             "(default: the model's: none for fbank/mfcc, utt for decoar)")
    parser.add_argument("--norm-vars", type=str2bool, default=None, metavar="true|false",
                        help="with --cmvn: also normalise variances (default: the model's)")
    parser.add_argument("--params", default=None, metavar="FILE",
                        help="model weights (decoar: MXNet .params or PyTorch .pt; "
                             "default: the one named in conf/<model>.yaml)")
    parser.add_argument("--model-config", default=None, metavar="YAML",
                        help="model config (default: the toolkit's conf/<model>.yaml)")
    parser.add_argument("--output", default=None,
                        help="which output: wav2vec c (default) or z; trill layer19 (default) or embedding")
    parser.add_argument("--layer", type=layer_list, default=None, metavar="N[,M...]",
                        help="wav2vec2/hubert/decoar2/bertphone: transformer layer N (default: the model "
                             "output; 0: the transformer's input). N,M,...: several layers from one forward "
                             "pass, each written as a --layer N run writes it, under <out-dir>/layerN/")
    parser.add_argument("--trim-silence", type=str2bool, default=None, metavar="true|false",
                        help="ge2e: trim long silences with webrtcvad as resemblyzer's preprocess_wav "
                             "(default: conf/ge2e.yaml's, false)")
    parser.add_argument("--gpu", type=int, default=None, metavar="N",
                        help="run the model on GPU N (default: CPU)")
    parser.add_argument("--dtype", default=None, choices=DTYPES,
                        help="precision of the model's computation; outputs are written as float32 "
                             "(default: float32, without TF32 on a GPU; tf32: float32 with a GPU's "
                             "TF32 matmuls and convolutions; see docs/benchmarks.md for each one's error)")
    parser.add_argument("--device", default=None,
                        help="torch device, e.g. cpu, cuda:1 (overrides --gpu)")
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
    """The options ``registry.create`` takes, from parsed arguments."""
    return {
        "feature_config": args.fbank_config,
        "cmvn": args.cmvn,
        "norm_vars": args.norm_vars,
        "backend": args.fbank_backend,
        "params": args.params,
        "config": args.model_config,
        "output": args.output,
        "layer": args.layer,
        "trim_silence": args.trim_silence,
        "gpu": args.gpu,
        "device": args.device,
        "dtype": args.dtype,
    }


def setup_logging(verbose=False):
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT)
