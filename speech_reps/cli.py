"""``speech-reps``: the seed-compatible command line.

  speech-reps featurize --model fbank --in-wav x.wav --out-npy y.npy
  speech-reps featurize --model ge2e --pool mean --in-wav x.wav --out-ark x.ark   # + x.scp
  speech-reps models

Whole data dirs go through steps/featurize.py (one job) or steps/featurize.sh (--nj jobs).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from speech_reps.cli_args import add_model_args, model_options, setup_logging
from speech_reps.errors import ConfigError, SpeechRepsError
from speech_reps.kaldi.xvectors import POOLS

PROG = "speech-reps"


def _featurize(args):
    from speech_reps.engine.run import FileFeaturizer

    if isinstance(args.layer, tuple):
        raise ConfigError("--layer N,M,...: one output per layer is for data dirs (steps/featurize.py); "
                          "a single file takes one --layer")
    if args.out_npy is None and args.out_ark is None:
        raise ConfigError("featurize: give --out-npy <file>, --out-ark <file>, or both")
    run = FileFeaturizer(args.model, model_options(args), allow_resample=args.allow_resample,
                         channel=args.channel, pipe_timeout=args.pipe_timeout)
    feats = run(args.in_wav)
    shape = f"{feats.shape[0]} frames x {feats.shape[1]} dims"
    if args.pool != "none":  # as featurize.py --pool: the model's own pooling (GE2E: unit length)
        feats = run.featurizer.pool(feats, args.pool)
        shape = f"{args.pool} of {shape}"
    outputs = []
    if args.out_npy is not None:
        np.save(args.out_npy, feats)
        outputs.append(args.out_npy)
    if args.out_ark is not None:
        scp = args.out_scp or str(Path(args.out_ark).with_suffix(".scp"))
        _write_ark(args.out_ark, scp, args.key or Path(args.in_wav).stem, feats)
        outputs.append(f"{args.out_ark} ({scp})")
    print(f"{args.in_wav}: {shape} -> {', '.join(map(str, outputs))}", file=sys.stderr)


def _write_ark(ark, scp, key, feats):
    """One Kaldi archive entry (a matrix, or a vector with --pool) and its scp line, with the
    archive's absolute path as Kaldi's copy-feats writes with ark,scp:."""
    import kaldiio

    if any(c.isspace() for c in key) or not key:
        raise ConfigError(f"--key '{key}': a Kaldi key is one word (no spaces)")
    try:
        kaldiio.save_ark(str(Path(ark).resolve()), {key: feats}, scp=scp)
    except OSError as e:
        raise ConfigError(f"cannot write {e.filename or ark}: {e.strerror or e}") from None


def _models(args):
    from speech_reps.models.catalog import models_table

    print(models_table())


def get_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("featurize", help="featurize one audio file into a .npy (T x dim, float32) or a Kaldi ark")
    p.add_argument("--in-wav", required=True, help="audio file (anything soundfile reads) or 'cmd |'")
    p.add_argument("--out-npy", default=None, help="output .npy file")
    p.add_argument("--out-ark", default=None, metavar="ARK",
                   help="output Kaldi archive (float32 matrix; a vector with --pool), with an scp beside it")
    p.add_argument("--out-scp", default=None, metavar="SCP", help="with --out-ark: its scp (default: <ark>.scp)")
    p.add_argument("--key", default=None, help="with --out-ark: the utterance key (default: the file's name "
                                               "without its extension)")
    p.add_argument("--pool", default="none", choices=POOLS,
                   help="mean: one vector for the file, as steps/featurize.py --pool (default: none)")
    add_model_args(p)
    p.set_defaults(func=_featurize)
    p = sub.add_parser("models", help="the models: dim, frame shift, input rate, weights found or how to get "
                                      "them, extra packages needed")
    p.set_defaults(func=_models)
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
