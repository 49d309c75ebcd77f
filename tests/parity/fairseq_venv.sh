#!/usr/bin/env bash
# Build (once) the throwaway fairseq venv used only by the parity tests; print its python.
# fairseq 0.12.2 does not import on Python 3.11; its fork fairseq-fixed 0.12.3.1 does. It is
# installed with --no-build-isolation --no-deps after torch 2.13.0 and its pure-Python needs:
# otherwise its build pulls a CUDA torch (5 GB).
# Usage: tests/parity/fairseq_venv.sh [<venv-dir>]   (default: .cache/parity/fairseq)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.cache/parity/fairseq}
python=${PYTHON:-python3}
if [ ! -f "$venv/.ready" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  pip=("$venv/bin/python" -m pip install --quiet)
  "${pip[@]}" torch==2.13.0 >&2
  # fairseq-fixed's own pins (hydra-core 1.3.2, omegaconf 2.3.0); scikit-learn: its tasks import it
  "${pip[@]}" numpy scipy "hydra-core==1.3.2" "omegaconf==2.3.0" bitarray regex sacrebleu cython \
    scikit-learn tqdm cffi packaging setuptools wheel >&2
  "${pip[@]}" --no-build-isolation --no-deps fairseq-fixed==0.12.3.1 >&2
  "$venv/bin/python" -c "from fairseq.models.wav2vec import Wav2VecModel, Wav2Vec2Model
from fairseq.models.hubert import HubertModel" >&2
  touch "$venv/.ready"
fi
echo "$venv/bin/python"
