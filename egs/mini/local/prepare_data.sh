#!/usr/bin/env bash
# Make (from Debian's asterisk-core-sounds-{en,fr,es}-wav, CC-BY-SA-3.0, and sox, which `make sysdeps`
# installs) data/train and data/test: one "speaker" per language, 16 kHz via sox pipes.
set -euo pipefail
per_lang=40
help_message="Usage: $0 [--per-lang <n>] <data-root>
 e.g.: $0 --per-lang 40 data"
. "$SPEECH_REPS_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { printf '%s\n' "$help_message" >&2; exit 1; }
sounds=/usr/share/asterisk/sounds
packages="asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-es-wav sox"
missing=
for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then  # installing is the Makefile's job, never a recipe stage's
  echo "$0: missing system packages:$missing; run 'make sysdeps' in $SPEECH_REPS_ROOT (as root)" >&2
  exit 1
fi
python3 local/prepare_data.py --per-lang "$per_lang" "$sounds" "$1"
