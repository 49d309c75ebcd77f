#!/usr/bin/env bash
# Build (once) the throwaway GluonNLP venv used only by the BERTphone parity test; print its python.
# The original BERTphone code imports gluonnlp.model.transformer.BaseTransformerEncoder, which
# exists up to GluonNLP 0.8.x (0.9 renamed it): 0.8.3 is pure Python and runs on Python 3.11 with
# MXNet 1.9.1 + numpy 1.23.5 (MXNet refuses numpy 2). --no-deps: its only need is numpy.
# Usage: tests/parity/gluonnlp_venv.sh [<venv-dir>]   (default: .cache/parity/gluonnlp)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.cache/parity/gluonnlp}
python=${PYTHON:-python3}
if [ ! -f "$venv/.ready" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet "numpy==1.23.5" "mxnet==1.9.1" >&2
  "$venv/bin/python" -m pip install --quiet --no-deps "gluonnlp==0.8.3" >&2
  "$venv/bin/python" -W ignore -c "import mxnet
from gluonnlp.model.transformer import BaseTransformerEncoder" >&2
  touch "$venv/.ready"
fi
echo "$venv/bin/python"
