#!/usr/bin/env bash
# Build (once) the throwaway MXNet venv used only by the parity tests; print its python.
# MXNet 1.9.1 needs numpy <= 1.23.5, so it never shares .venv with the toolkit.
# Usage: tests/parity/mxnet_venv.sh [<venv-dir>]   (default: .cache/parity/mxnet)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.cache/parity/mxnet}
python=${PYTHON:-python3}
if [ ! -f "$venv/.ready" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet "numpy==1.23.5" "mxnet==1.9.1" >&2
  "$venv/bin/python" -c "import mxnet" >&2
  touch "$venv/.ready"
fi
echo "$venv/bin/python"
