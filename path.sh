# Source this from the repo root or a recipe dir (egs/<name>/): . ./path.sh
# Puts steps/, utils/ and utils/parallel/ (run.pl) on PATH, activates .venv, and adds Kaldi's feature binaries
# ($KALDI_ROOT/src/featbin) when KALDI_ROOT is set.
SPEECH_REPS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
export SPEECH_REPS_ROOT
export PATH=$SPEECH_REPS_ROOT/steps:$SPEECH_REPS_ROOT/utils:$SPEECH_REPS_ROOT/utils/parallel:$PATH
if [ -f "$SPEECH_REPS_ROOT/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$SPEECH_REPS_ROOT/.venv/bin/activate"
else
  echo "path.sh: $SPEECH_REPS_ROOT/.venv is missing; run 'make venv' in $SPEECH_REPS_ROOT" >&2
fi
if [ -n "${KALDI_ROOT:-}" ]; then
  if [ -d "$KALDI_ROOT/src/featbin" ]; then
    export PATH=$KALDI_ROOT/src/featbin:$PATH
  else
    echo "path.sh: KALDI_ROOT=$KALDI_ROOT has no src/featbin" >&2
  fi
fi
export LC_ALL=C
