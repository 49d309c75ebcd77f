# Source this from the repo root or a recipe dir (egs/<name>/): . ./path.sh
# Puts steps/ and utils/ on PATH, activates .venv, and adds Kaldi's feature binaries
# ($KALDI_ROOT/src/featbin) when KALDI_ROOT is set.
# Our launchers (utils/parallel: run.pl, slurm.pl) go LAST on PATH: a run.pl/queue.pl/slurm.pl
# already on PATH (a Kaldi recipe's utils/) keeps winning, so sourcing this file never swaps
# the launcher behind a recipe's $train_cmd. When KALDI_ROOT is set, or another run.pl or
# slurm.pl is found first, a line on stderr says which one a plain "run.pl" now runs.
SPEECH_REPS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
export SPEECH_REPS_ROOT
export PATH=$SPEECH_REPS_ROOT/steps:$SPEECH_REPS_ROOT/utils:$PATH:$SPEECH_REPS_ROOT/utils/parallel
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
for _launcher in run.pl slurm.pl; do
  _found=$(command -v "$_launcher" || true)
  if ! [ "$_found" -ef "$SPEECH_REPS_ROOT/utils/parallel/$_launcher" ]; then
    echo "path.sh: $_launcher is $_found (Kaldi's or your own, first on PATH);" \
      "speech-reps' is $SPEECH_REPS_ROOT/utils/parallel/$_launcher" >&2
  elif [ -n "${KALDI_ROOT:-}" ] && [ "$_launcher" = run.pl ]; then
    echo "path.sh: run.pl is speech-reps' ($_found): no other run.pl is on PATH;" \
      "Kaldi's is $KALDI_ROOT/egs/wsj/s5/utils/run.pl" >&2
  fi
done
unset _launcher _found
export LC_ALL=C
