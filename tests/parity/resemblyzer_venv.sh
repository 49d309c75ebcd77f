#!/usr/bin/env bash
# Build (once) the throwaway resemblyzer venv used only by the GE2E parity test; print its python.
# resemblyzer 0.1.4 with its real dependencies: librosa (mel filters, STFT), webrtcvad (the VAD
# of preprocess_wav; built from its sdist, needs a C compiler) and scipy. torch is pinned and
# installed first (an unpinned one pulls CUDA wheels); setuptools<81 keeps pkg_resources, which
# webrtcvad imports. resemblyzer itself goes in with --no-deps: its "typing" requirement is a
# Python 2 backport.
# Usage: tests/parity/resemblyzer_venv.sh [<venv-dir>]   (default: .cache/parity/resemblyzer)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.cache/parity/resemblyzer}
python=${PYTHON:-python3}
if [ ! -f "$venv/.ready" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  pip=("$venv/bin/python" -m pip install --quiet)
  "${pip[@]}" torch==2.13.0 >&2
  "${pip[@]}" "setuptools<81" wheel numpy scipy "librosa==0.11.0" soundfile >&2
  "${pip[@]}" --no-build-isolation "webrtcvad==2.0.10" >&2
  "${pip[@]}" --no-deps "resemblyzer==0.1.4" >&2
  "$venv/bin/python" -c "from resemblyzer import VoiceEncoder, preprocess_wav; import librosa, webrtcvad" >&2
  touch "$venv/.ready"
fi
echo "$venv/bin/python"
