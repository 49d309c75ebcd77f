#!/usr/bin/env bash
# Copy a data dir (its tables; not split*/ or .backup/), as Kaldi's utils/copy_data_dir.sh.
set -euo pipefail
usage="Usage: $0 <src-data-dir> <dest-data-dir>
 e.g.: $0 data/train data/train_fbank"
case "${1:-}" in --help|-h) echo "$usage"; exit 0 ;; -*) echo "$0: invalid option $1" >&2; exit 1 ;; esac
[ $# -eq 2 ] || { echo "$usage" >&2; exit 1; }
python3 -c 'import sys
from speech_reps.errors import DataDirError
from speech_reps.kaldi.datadir_tools import copy_data_dir
try:
    copy_data_dir(sys.argv[1], sys.argv[2])
except DataDirError as e:
    sys.exit("\n".join(f"copy_data_dir.sh: {p}" for p in e.problems))
except OSError as e:
    sys.exit(f"copy_data_dir.sh: cannot write {e.filename or sys.argv[2]}: {e.strerror or e}")' "$1" "$2"
