"""What a featurization job's output depends on, as one hash: a finished job is reused, and a
killed one resumed, only when this is unchanged.

It covers
- the inputs: the data dir's tables that choose the audio (wav.scp, segments, utt2spk,
  spk2utt), byte for byte, and the identity of every audio file they name (size and
  modification time; for a ``cmd |`` pipe, of each word of the command that is a file), so an
  edited table, a replaced recording or a missing file that was supplied since all count;
- every option value: the options as given, the front end's resolved Kaldi options, the
  model's description (weights path, sizes, layer, dtype...), and the contents of every option
  file named (Kaldi conf, model yaml) or, for large files (weights), their size and time; for
  --vad-scp also the identity of the archives it points into;
- the code: speech-reps' version and a hash of its Python sources and default confs, so a
  changed algorithm never mixes with output of the old one.

Identity by size and time, not content, for audio and weights: hashing a corpus would cost as
much as reading it, and every tool that rewrites a file changes its time (``make`` relies on it).
"""

import functools
import hashlib
import json
import os
import shlex
from pathlib import Path

import speech_reps
from speech_reps.conf_dir import conf_dir
from speech_reps.kaldi.datadir import rxfile_kind, rxfile_path

DATA_TABLES = ("wav.scp", "segments", "utt2spk", "spk2utt")
_SMALL_FILE = 1 << 20  # option files up to this size are identified by content


def file_identity(path):
    """[size, mtime in ns] of a file, or what is wrong with it ("missing", "directory")."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable: {e.strerror}"
    if not os.path.isfile(path):
        return "not a file"
    return [st.st_size, st.st_mtime_ns]


def _content_or_identity(path):
    path = Path(path)
    identity = file_identity(path)
    if isinstance(identity, list) and identity[0] <= _SMALL_FILE:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return identity


def _audio_identity(rxfile):
    """The identity of what a wav.scp entry reads."""
    kind = rxfile_kind(rxfile)
    if kind != "pipe":
        return file_identity(rxfile_path(rxfile))
    try:
        words = shlex.split(rxfile[:-1])
    except ValueError:
        words = rxfile[:-1].split()
    return {w: file_identity(w) for w in words if os.path.isfile(w)}


def inputs_identity(data_dir, recordings):
    """The data dir's tables and the audio behind ``recordings`` ({recording: rxfile})."""
    data_dir = Path(data_dir)
    tables = {name: _content_or_identity(data_dir / name) for name in DATA_TABLES
              if (data_dir / name).exists()}
    audio = {rec: _audio_identity(rx) for rec, rx in sorted(recordings.items())}
    return {"tables": tables, "audio": audio}


def options_identity(options):
    """Option values, with every value that names a file replaced by [value, its identity]."""
    out = {}
    for key, value in sorted(options.items()):
        if isinstance(value, Path) or (isinstance(value, str) and os.path.isfile(value)):
            value = [str(value), _content_or_identity(value)]
        out[key] = value
    return out


def table_targets_identity(scp):
    """The identity of every archive an scp (a vad.scp) points into: its own bytes do not change
    when the archives are written again (compute_vad.py with other options)."""
    arks = set()
    with open(scp, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(None, 1)
            if len(parts) == 2 and rxfile_kind(parts[1].strip()) != "pipe":
                arks.add(rxfile_path(parts[1].strip()))
    return {ark: file_identity(ark) for ark in sorted(arks)}


@functools.lru_cache(maxsize=1)
def code_identity():
    """speech-reps' version and a hash of its sources and default confs."""
    digest = hashlib.sha256()
    package = Path(speech_reps.__file__).parent
    files = sorted(package.rglob("*.py")) + sorted(Path(conf_dir()).glob("*"))
    for f in files:
        if f.is_file():
            digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return f"{speech_reps.__version__}+{digest.hexdigest()[:16]}"


def fingerprint(*parts):
    """One hash of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
