"""Writing features as Kaldi ark/scp, so that no scp line ever points at a half-written archive.

The archive is written as ``<ark>.tmp``; scp lines (absolute paths, the final archive name) are
kept until ``close()``, which cuts the archive back to its last complete matrix, fsyncs it,
renames it into place and only then writes the scp (itself via a temporary file and a rename).
Compression uses Kaldi's compressed matrix, method 1 (kAutomaticMethod), as copy-feats --compress.
"""

import os
from pathlib import Path

import kaldiio
import numpy as np

COMPRESSION_METHOD = 1  # Kaldi's kAutomaticMethod, copy-feats' default


def _replace_atomically(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class FeatureWriter:
    """Context manager: ``with FeatureWriter(ark, scp) as w: w.write(key, mat)``."""

    def __init__(self, ark_path, scp_path, compress=False):
        self.ark_path = Path(ark_path).resolve()
        self.scp_path = Path(scp_path)
        self.compress = compress
        self._tmp = Path(f"{self.ark_path}.tmp")
        self._f = open(self._tmp, "wb")
        self._good = 0  # bytes of complete matrices
        self.entries = []  # (key, "ark:offset"), in write order
        self.num_frames = {}

    def write(self, key, feats):
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"invalid utterance id {key!r} (empty or containing whitespace)")
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        start = self._good
        kaldiio.save_ark(self._f, {key: feats},
                         compression_method=COMPRESSION_METHOD if self.compress else None)
        self._f.flush()
        self._good = self._f.tell()
        self.entries.append((key, f"{self.ark_path}:{start + len(key.encode()) + 1}"))
        self.num_frames[key] = feats.shape[0]

    def close(self):
        if self._f is None:
            return
        self._f.truncate(self._good)  # drop a matrix cut short by an exception
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._f = None
        os.replace(self._tmp, self.ark_path)
        _replace_atomically(self.scp_path, "".join(f"{k} {v}\n" for k, v in self.scp_entries()))

    def scp_entries(self):
        """(key, "ark:offset") of every complete matrix, in LC_ALL=C key order."""
        return sorted(self.entries, key=lambda e: e[0].encode())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def write_scp_like(path, items):
    """A Kaldi table (``key value`` lines), replaced atomically."""
    _replace_atomically(path, "".join(f"{k} {v}\n" for k, v in items))
