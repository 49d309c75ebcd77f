#!/usr/bin/env bash
# Downloads, on a machine that reaches a package registry, the wheels bench/gpu_check.sh installs
# on a GPU host that has no network: the project's pure dependencies (and soundfile's compiled
# cffi, kaldi-native-fbank's and soxr's compiled builds) for CPython 3.12 on x86-64 Linux,
# without their own dependencies (numpy and torch are the GPU host's own). The folder is
# ignored by git: carry it to the GPU host with the working tree.
set -euo pipefail

dest=.cache/gpu-wheels
python_version=3.12
help_message="Usage: $0 [--dest DIR] [--python-version X.Y]
 e.g.: $0 --dest .cache/gpu-wheels   # then, on the GPU host: make gpu-check
Options:
  --dest <dir>               # where the wheels go (default: $dest)
  --python-version <X.Y>     # the GPU host's Python (default: $python_version)"

. utils/parse_options.sh || exit 1
if [ $# -ne 0 ]; then
  echo "$help_message" >&2
  exit 1
fi

python=python3
if [ -x .venv/bin/python ]; then python=.venv/bin/python; fi
# tqdm, pyyaml, pytest and its helpers are usually on a GPU host already; gpu_check.sh installs a
# carried wheel only when the host lacks that package. resemblyzer: the Makefile's pin.
packages=(kaldiio kaldi-native-fbank soundfile cffi pycparser soxr typing-extensions
          tqdm pyyaml pytest iniconfig pluggy packaging pygments
          resemblyzer==0.1.4)  # the GE2E weights ride in it (its code is never imported)
mkdir -p "$dest"
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$dest" \
  --python-version "$python_version" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  "${packages[@]}"
# The Hugging Face peer of `python -m bench --peers` on the GPU (bench/peers.py), with its own
# dependencies (numpy left out: the host's), into peers/: gpu_check.sh installs them apart from
# the project's, for that step only.
peers=(transformers==5.23.0)  # the Makefile's pin (PEERS)
mkdir -p "$dest/peers"
"$python" -m pip download --quiet --only-binary=:all: --dest "$dest/peers" \
  --python-version "$python_version" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  "${peers[@]}"
rm -f "$dest"/peers/numpy-*.whl
ls "$dest" "$dest/peers"
du -sh "$dest"
