# The recipe's environment: the toolkit's path.sh (steps/, utils/, .venv, KALDI_ROOT). A copy of
# this recipe elsewhere finds the toolkit through SPEECH_REPS_ROOT.
. "${SPEECH_REPS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/path.sh"
