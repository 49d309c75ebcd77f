"""``speech-reps``: the seed-compatible command line.

 e.g.: speech-reps featurize --model fbank --in-wav x.wav --out-npy y.npy
  speech-reps featurize --model ge2e --pool mean --in-wav x.wav --out-ark x.ark   # + x.scp
  speech-reps models

Whole data dirs go through steps/featurize.py (one job) or steps/featurize.sh (--nj jobs).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from speech_reps.cli_args import OneLineErrors, add_model_args, model_options, setup_logging
from speech_reps.errors import ConfigError, SpeechRepsError
from speech_reps.kaldi.xvectors import POOLS

PROG = "speech-reps"


def _featurize(args):
    from speech_reps.engine.run import FileFeaturizer

    if isinstance(args.layer, tuple):
        raise ConfigError("--layer N,M,...: one output per layer is for data dirs (steps/featurize.py); "
                          "a single file takes one --layer")
    targets, key = _output_paths(args)  # checked before the model runs
    run = FileFeaturizer(args.model, model_options(args), allow_resample=args.allow_resample,
                         channel=args.channel, pipe_timeout=args.pipe_timeout)
    feats = run(args.in_wav)
    shape = f"{feats.shape[0]} frames x {feats.shape[1]} dims"
    if args.pool != "none":  # as featurize.py --pool: the model's own pooling (GE2E: unit length)
        feats = run.featurizer.pool(feats, args.pool)
        shape = f"{args.pool} of {shape}"
    contents = {}
    if args.out_npy is not None:
        contents[targets["npy"]] = lambda f: np.save(f, feats)
    if args.out_ark is not None:
        contents[targets["ark"]] = lambda f: _write_ark_entry(f, key, feats)
        # the archive's absolute path, as Kaldi's copy-feats writes with ark,scp:
        scp_line = f"{key} {targets['ark'].resolve()}:{len(key.encode()) + 1}\n".encode()
        contents[targets["scp"]] = lambda f: f.write(scp_line)
    _write_all(contents)
    outputs = [str(args.out_npy)] if args.out_npy is not None else []
    if args.out_ark is not None:
        outputs.append(f"{args.out_ark} ({targets['scp']})")
    print(f"{args.in_wav}: {shape} -> {', '.join(outputs)}", file=sys.stderr)


def _output_paths(args):
    """({"npy"/"ark"/"scp": Path}, the archive's key or None) of the outputs asked for, each a file
    of its own, written exactly there (numpy's save would add .npy to a name without it)."""
    if args.out_npy is None and args.out_ark is None:
        raise ConfigError("featurize: give --out-npy <file>, --out-ark <file>, or both")
    if args.out_ark is None and (args.out_scp is not None or args.key is not None):
        raise ConfigError("featurize: --out-scp and --key go with --out-ark")
    paths, key = {}, None
    if args.out_npy is not None:
        paths["npy"] = Path(args.out_npy)
    if args.out_ark is not None:
        paths["ark"] = Path(args.out_ark)
        paths["scp"] = Path(args.out_scp) if args.out_scp is not None else paths["ark"].with_suffix(".scp")
        if args.key is None and args.in_wav.rstrip().endswith("|"):
            raise ConfigError("featurize: --out-ark with a 'cmd |' input: give its utterance key with --key")
        key = args.key if args.key is not None else Path(args.in_wav).stem
        if not key or any(c.isspace() for c in key):
            raise ConfigError(f"--key '{key}': a Kaldi key is one word (no spaces)")
    for what, path in paths.items():
        if not path.name or path.is_dir():
            raise ConfigError(f"--out-{what} '{path}': expected a file name, not a directory")
    seen = {}
    for what, path in paths.items():
        other = seen.setdefault(path.resolve(), what)
        if other != what:
            raise ConfigError(f"--out-{what} {path}: the same file as the {other} output "
                              f"({'give --out-scp' if {other, what} == {'ark', 'scp'} else 'give another name'})")
    return paths, key


def _write_ark_entry(f, key, feats):
    """One Kaldi binary archive entry: the key, then a float matrix (a vector with --pool)."""
    import kaldiio

    f.write(key.encode() + b" ")
    kaldiio.save_mat(f, feats)


def _write_all(contents):
    """Each {path: write(file)} written beside its path, then all renamed into place: a failure
    leaves none of them (nor a half-written one) behind."""
    import os
    import tempfile

    umask = os.umask(0)
    os.umask(umask)
    staged = {}
    try:
        for path, write in contents.items():
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            except OSError as e:
                raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
            staged[path] = tmp
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.chmod(tmp, 0o666 & ~umask)  # a new file's mode, not mkstemp's private 0600
        for path, tmp in staged.items():
            os.replace(tmp, path)
        staged = {}
    except OSError as e:
        raise ConfigError(f"cannot write {e.filename or next(iter(contents))}: {e.strerror or e}") from None
    finally:
        for tmp in staged.values():
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _models(args):
    from speech_reps.models.catalog import models_table

    print(models_table())


def get_args(argv=None):
    parser = OneLineErrors(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrors)
    p = sub.add_parser("featurize", help="featurize one audio file into a .npy (T x dim, float32) or a Kaldi ark",
                       epilog=" e.g.: speech-reps featurize --model fbank --in-wav x.wav --out-npy y.npy",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
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
                                      "them, extra packages needed", epilog=" e.g.: speech-reps models",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
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
