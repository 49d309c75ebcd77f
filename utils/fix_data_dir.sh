#!/usr/bin/env bash
# Keep only the utterances that every file of a data dir knows (utt2spk, wav.scp/segments, text,
# feats.scp ...), as Kaldi's utils/fix_data_dir.sh; the originals go to <data>/.backup.
set -euo pipefail
usage="Usage: $0 <data-dir>
 e.g.: $0 data/train"
case "${1:-}" in --help|-h) echo "$usage"; exit 0 ;; -*) echo "$0: invalid option $1" >&2; exit 1 ;; esac
[ $# -eq 1 ] || { echo "$usage" >&2; exit 1; }
python3 -c 'import sys
from speech_reps.errors import DataDirError
from speech_reps.kaldi.datadir_tools import fix_data_dir
try:
    kept, dropped = fix_data_dir(sys.argv[1])
except DataDirError as e:
    sys.exit("\n".join(f"fix_data_dir.sh: {p}" for p in e.problems))
except OSError as e:
    sys.exit(f"fix_data_dir.sh: cannot write {e.filename or sys.argv[1]}: {e.strerror or e}")
print(f"fix_data_dir.sh: {sys.argv[1]}: kept {kept} utterances, dropped {dropped} (old files in {sys.argv[1]}/.backup)")' "$1"
