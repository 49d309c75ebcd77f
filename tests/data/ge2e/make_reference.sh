#!/usr/bin/env bash
# Remake resemblyzer_reference.npz: resemblyzer 0.1.4's own d-vectors (VoiceEncoder on CPU) of
# the golden wavs and of spk1-utt1 + 1 s of digital silence + spk2-utt1, in the parity venv.
# Keys <utt>/{plain,pre}_{embed,partials}: plain = volume-normalised only, pre = preprocess_wav.
# Usage: tests/data/ge2e/make_reference.sh   (from anywhere; builds .cache/parity/resemblyzer once)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
python=$("$root/tests/parity/resemblyzer_venv.sh" | tail -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/.venv/bin/python" -c "
import sys; sys.path[:0] = ['$root/tests', '$root']
from ge2e_audio import reference_audio; import numpy as np
np.savez('$tmp/audio.npz', **reference_audio())"
PYTHONPATH=$root "$python" -W ignore "$root/tests/parity/ge2e_resemblyzer_reference.py" --embeddings-only \
  --audio "$tmp/audio.npz" --out "$root/tests/data/ge2e/resemblyzer_reference.npz"
