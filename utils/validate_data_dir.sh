#!/usr/bin/env bash
# Validate a data dir with the checks of Kaldi's utils/validate_data_dir.sh: utt2spk and text
# required (unless --no-text), tables sorted and unique, utt2spk/spk2utt consistent, segments
# naming known recordings, audio files present, text/feats.scp/utt2num_frames covering exactly
# the utterances. Flags as Kaldi's: --no-text, --no-feats; --no-check-files skips file checks.
set -euo pipefail
opts=(--require-utt2spk --require-text)
while [ $# -gt 1 ]; do
  case "$1" in
    --no-text) opts=("${opts[@]/--require-text}"); shift ;;
    --no-feats) opts+=(--no-feats); shift ;;
    --no-check-files) opts+=(--no-check-files); shift ;;
    --no-wav|--non-print|--no-spk-sort) shift ;;  # Kaldi's other flags: nothing to do here
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "Usage: $0 [--no-text] [--no-feats] [--no-check-files] <data-dir>" >&2; exit 1; }
args=(); for o in "${opts[@]}"; do [ -n "$o" ] && args+=("$o"); done
exec python3 "$(dirname "$0")/validate_data_dir.py" "${args[@]}" "$1"
