#!/usr/bin/env bash
# Combine data dirs into one, as Kaldi's utils/combine_data.sh: the tables all sources have are
# concatenated and sorted, spk2utt is rebuilt; a key in two sources is an error.
set -euo pipefail
usage="Usage: $0 <dest-data-dir> <src-data-dir1> [<src-data-dir2> ...]
 e.g.: $0 data/train data/train_a data/train_b"
for a in "$@"; do
  case $a in --help|-h) echo "$usage"; exit 0 ;; -*) echo "$0: invalid option $a" >&2; exit 1 ;; esac
done
[ $# -ge 2 ] || { echo "$usage" >&2; exit 1; }
python3 -c 'import sys
from speech_reps.errors import DataDirError
from speech_reps.kaldi.datadir_tools import combine_data_dirs
try:
    names = combine_data_dirs(sys.argv[1], sys.argv[2:])
except DataDirError as e:
    sys.exit("\n".join(f"combine_data.sh: {p}" for p in e.problems))
except OSError as e:
    sys.exit(f"combine_data.sh: cannot write {e.filename or sys.argv[1]}: {e.strerror or e}")
print(f"combine_data.sh: {sys.argv[1]}: combined {chr(32).join(names)} of {len(sys.argv) - 2} dirs")' "$@"
