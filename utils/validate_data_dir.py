#!/usr/bin/env python3
"""Check a Kaldi data dir the way speech-reps reads it, before any work is spent on it.

Reads <data-dir>/{wav.scp,segments,utt2spk,spk2utt}, and feats.scp / utt2num_frames when
present; prints one line per problem (file:line: key: cause) and exits 1 if there is any.

Usage: utils/validate_data_dir.py [--no-check-files] <data-dir>
 e.g.: utils/validate_data_dir.py data/train
"""

import argparse
import sys

from speech_reps.errors import DataDirError
from speech_reps.kaldi import DataDir
from speech_reps.kaldi.tables import read_table

PROG = "validate_data_dir.py"


def get_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", metavar="<data-dir>")
    parser.add_argument("--no-check-files", action="store_true",
                        help="do not check that the audio files of wav.scp exist")
    return parser.parse_args(argv)


def feature_problems(data):
    """feats.scp and utt2num_frames, when present, must cover exactly the utterances."""
    problems, utts = [], [u.utt for u in data.utterances]
    for name in ("feats.scp", "utt2num_frames"):
        path = data.path / name
        if path.is_file():
            keys = [r.key for r in read_table(path, problems, min_fields=1, max_fields=1)]
            if keys != utts:
                extra, missing = set(keys) - set(utts), set(utts) - set(keys)
                problems.append(f"{path}: utterances differ from the data dir's "
                                f"({len(missing)} missing, {len(extra)} extra"
                                + (f", e.g. {sorted(missing or extra)[0]})" if missing or extra else ")"))
    return problems


def validate(data_dir, check_files=True):
    """Problem lines of ``data_dir``; empty when it is valid."""
    try:
        data = DataDir.load(data_dir, check_files=check_files)
    except DataDirError as e:
        return e.problems
    return feature_problems(data)


def main(argv=None):
    args = get_args(argv)
    problems = validate(args.data_dir, check_files=not args.no_check_files)
    for line in problems:
        print(f"{PROG}: {line}", file=sys.stderr)
    if not problems:
        print(f"{PROG}: {args.data_dir}: valid", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
