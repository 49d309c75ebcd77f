"""The command-line options models share; a model's declaration names those it takes.

The help of each is completed from the declarations: which models take it, and each one's
values (``ModelSpec.option_notes``), so the help cannot drift from the models.
"""

import argparse

from speech_reps.frontend import BACKENDS, CMVN_MODES
from speech_reps.kaldi.options import parse_bool
from speech_reps.models.declaration import Option
from speech_reps.models.torch_device import DTYPES


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


_LIST = [
    Option("feature_config", flag="--fbank-config", metavar="KALDI_CONF",
           help="Kaldi option file for the front end "
                "(default: the toolkit's conf/fbank.conf; conf/mfcc.conf for mfcc)"),
    Option("backend", flag="--fbank-backend", choices=BACKENDS,
           help="numpy: vectorised numpy; native: kaldi-native-fbank; torch: batched PyTorch, "
                "on the model's device; kaldi: Kaldi's compute-*-feats on PATH "
                "(default: numpy, torch when the model runs on a GPU)"),
    Option("cmvn", choices=CMVN_MODES,
           help="mean normalisation per utterance or per speaker (utt2spk) "
                "(default: the model's: none for fbank/mfcc, utt for decoar)"),
    Option("norm_vars", type=str2bool, metavar="true|false",
           help="with --cmvn: also normalise variances (default: the model's)"),
    Option("params", metavar="FILE",
           help="model weights (decoar: MXNet .params or PyTorch .pt; default: the one named in "
                "conf/<model>.yaml, under $SPEECH_REPS_ARTIFACTS, else the toolkit's artifacts/)"),
    Option("config", flag="--model-config", metavar="YAML",
           help="model config over the toolkit's conf/<model>.yaml (keys it leaves out keep that file's values)"),
    Option("output", help="which output"),
    Option("layer", type=layer_list, metavar="N[,M...]",
           help="transformer layer N (default: the model output; 0: the transformer's input). N,M,...: "
                "several layers from one forward pass, each written as a --layer N run writes it, "
                "under <out-dir>/layerN/"),
    Option("trim_silence", type=str2bool, metavar="true|false",
           help="trim long silences with webrtcvad as resemblyzer's preprocess_wav "
                "(default: conf/ge2e.yaml's, false)"),
    Option("gpu", type=int, metavar="N", help="run the model on GPU N (default: CPU)"),
    Option("dtype", choices=DTYPES,
           help="precision of the model's computation; outputs are written as float32 "
                "(default: float32, without TF32 on a GPU; tf32: float32 with a GPU's "
                "TF32 matmuls and convolutions; see docs/benchmarks.md for each one's error)"),
    Option("device", help="torch device, e.g. cpu, cuda:1 (overrides --gpu)"),
]
OPTIONS = {o.name: o for o in _LIST}
