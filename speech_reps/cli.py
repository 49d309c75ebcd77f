"""``speech-reps``: the seed-compatible command line.

  speech-reps featurize --model fbank --in-wav x.wav --out-npy y.npy
  speech-reps models

Whole data dirs go through steps/featurize.py (one job) or steps/featurize.sh (--nj jobs).
"""

import argparse
import sys

import numpy as np

from speech_reps.cli_args import add_model_args, model_options, setup_logging
from speech_reps.errors import ConfigError, SpeechRepsError
from speech_reps.models.registry import model_names

PROG = "speech-reps"


def _featurize(args):
    from speech_reps.engine.run import featurize_file

    if isinstance(args.layer, tuple):
        raise ConfigError("--layer N,M,...: one output per layer is for data dirs (steps/featurize.py); "
                          "a single file takes one --layer")
    feats = featurize_file(args.in_wav, model=args.model, model_options=model_options(args),
                           allow_resample=args.allow_resample, channel=args.channel,
                           pipe_timeout=args.pipe_timeout)
    np.save(args.out_npy, feats)
    print(f"{args.in_wav}: {feats.shape[0]} frames x {feats.shape[1]} dims -> {args.out_npy}",
          file=sys.stderr)


def get_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("featurize", help="featurize one audio file into a .npy (T x dim, float32)")
    p.add_argument("--in-wav", required=True, help="audio file (anything soundfile reads) or 'cmd |'")
    p.add_argument("--out-npy", required=True, help="output .npy file")
    add_model_args(p)
    p.set_defaults(func=_featurize)
    p = sub.add_parser("models", help="list the available models")
    p.set_defaults(func=lambda args: print("\n".join(model_names())))
    return parser.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    setup_logging()
    try:
        args.func(args)
    except SpeechRepsError as e:
        for line in str(e).splitlines():
            print(f"{PROG}: {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
