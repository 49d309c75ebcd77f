#!/usr/bin/env python3
"""Check a Kaldi data dir the way speech-reps reads it, before any work is spent on it.

Reads <data-dir>/{wav.scp,segments,utt2spk,spk2utt}, and feats.scp / utt2num_frames when
present; prints one line per problem (file:line: key: cause) and exits 1 if there is any.

Usage: utils/validate_data_dir.py [--no-check-files] [--require-text] [--require-utt2spk] <data-dir>
 e.g.: utils/validate_data_dir.py data/train
"""

import argparse
import sys
from pathlib import Path

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
    parser.add_argument("--require-text", action="store_true", help="text must exist (Kaldi's default)")
    parser.add_argument("--require-utt2spk", action="store_true", help="utt2spk must exist (as Kaldi requires)")
    parser.add_argument("--no-feats", action="store_true", help="do not check feats.scp / utt2num_frames")
    return parser.parse_args(argv)


def coverage_problems(data, names):
    """Each of ``names``, when present, must cover exactly the utterances."""
    problems, utts = [], [u.utt for u in data.utterances]
    for name in names:
        path = data.path / name
        if path.is_file():
            keys = [r.key for r in read_table(path, problems, min_fields=0 if name == "text" else 1,
                                              max_fields=None if name == "text" else 1)]
            if keys != utts:
                extra, missing = set(keys) - set(utts), set(utts) - set(keys)
                problems.append(f"{path}: utterances differ from the data dir's "
                                f"({len(missing)} missing, {len(extra)} extra"
                                + (f", e.g. {sorted(missing or extra)[0]})" if missing or extra else ")"))
    return problems


def validate(data_dir, check_files=True, require_text=False, require_utt2spk=False, feats=True):
    """Problem lines of ``data_dir``; empty when it is valid."""
    missing = [f"{data_dir}/{name}: missing" for name, needed in (("text", require_text), ("utt2spk", require_utt2spk))
               if needed and not (Path(data_dir) / name).is_file()]
    try:
        data = DataDir.load(data_dir, check_files=check_files)
    except DataDirError as e:
        return missing + e.problems
    return missing + coverage_problems(data, ["text"] + (["feats.scp", "utt2num_frames"] if feats else []))


def main(argv=None):
    args = get_args(argv)
    problems = validate(args.data_dir, check_files=not args.no_check_files, require_text=args.require_text,
                        require_utt2spk=args.require_utt2spk, feats=not args.no_feats)
    for line in problems:
        print(f"{PROG}: {line}", file=sys.stderr)
    if not problems:
        print(f"{PROG}: {args.data_dir}: valid", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
