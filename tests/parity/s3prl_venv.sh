#!/usr/bin/env bash
# Build (once) the throwaway s3prl venv used only by the DeCoAR / DeCoAR 2.0 parity tests; print its
# python. s3prl 0.4.18 carries the DeCoAR and DeCoAR 2.0 upstream networks (s3prl/upstream/decoar/
# decoar.py, decoar2/decoar2.py + wav2vec2/wav2vec2_model.py) that read checkpoint_decoar.pt and
# checkpoint_decoar2.pt. Those modules import only torch and numpy, so s3prl goes in with --no-deps
# (its requirements pull torchaudio, transformers, ...) after torch 2.13.0 (pinned as in the main
# venv and the other parity venvs: the registry serves its CPU wheel) and numpy;
# --no-build-isolation: its sdist builds with this venv's setuptools.
# Usage: tests/parity/s3prl_venv.sh [<venv-dir>]   (default: .cache/parity/s3prl)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.cache/parity/s3prl}
python=${PYTHON:-python3}
if [ ! -f "$venv/.ready" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  pip=("$venv/bin/python" -m pip install --quiet)
  "${pip[@]}" torch==2.13.0 >&2
  "${pip[@]}" "numpy==2.4.6" "setuptools<81" wheel >&2
  "${pip[@]}" --no-build-isolation --no-deps "s3prl==0.4.18" >&2
  "$venv/bin/python" -c "from s3prl.upstream.decoar.decoar import Decoar
from s3prl.upstream.decoar2.decoar2 import Decoar2" >&2
  touch "$venv/.ready"
fi
echo "$venv/bin/python"
