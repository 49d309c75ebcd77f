#!/usr/bin/env bash
# Copy a data dir (its tables; not split*/ or .backup/), as Kaldi's utils/copy_data_dir.sh.
set -euo pipefail
[ $# -eq 2 ] || { echo "Usage: $0 <src-data-dir> <dest-data-dir>" >&2; exit 1; }
python3 -c 'import sys
from speech_reps.kaldi.datadir_tools import copy_data_dir
copy_data_dir(sys.argv[1], sys.argv[2])' "$1" "$2"
