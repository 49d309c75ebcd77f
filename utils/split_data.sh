#!/usr/bin/env bash
# Split a data dir into N parts for N jobs, like Kaldi's utils/split_data.sh:
# <data>/split<N>/1..N (whole speakers per part), or <data>/split<N>utt/1..N with --per-utt.
set -euo pipefail
per_utt=false
if [ "${1:-}" = "--per-utt" ] && [ "${2:-}" != true ] && [ "${2:-}" != false ]; then
  per_utt=true; shift  # Kaldi's bare flag
fi
help_message="Usage: $0 [--per-utt] <data-dir> <num-to-split>
 e.g.: $0 data/train 4"
. "$(dirname "$0")/parse_options.sh"
if [ $# -ne 2 ]; then printf '%s\n' "$help_message" >&2; exit 1; fi
[[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "$0: <num-to-split> $2: expected a positive number" >&2; exit 1; }
python3 -c 'import sys
from speech_reps.errors import DataDirError
from speech_reps.kaldi.split import split_data_dir
try:
    split_data_dir(sys.argv[1], int(sys.argv[2]), per_utt=sys.argv[3] == "true")
except DataDirError as e:
    sys.exit("\n".join(f"split_data.sh: {p}" for p in e.problems))' "$1" "$2" "$per_utt"
