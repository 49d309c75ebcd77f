"""Writing features as Kaldi ark/scp so that nothing half-written is ever reachable, and a
killed run can resume.

The archive is written as ``<ark>.tmp``. With a journal (``<ark>.journal``), every completed
batch appends its entries, its failed utterances and the archive's size, fsynced; a rerun with
the same fingerprint truncates ``<ark>.tmp`` to the last recorded size and goes on from there, so
its output is byte-identical to an uninterrupted run. The fsyncs run on a thread of their own
(``checkpoint``), so the archive is written on at memory speed while the disk catches up; a
batch's journal line follows only the fsync of the archive up to it. That thread also
starts the disk's write-out of every 32 MB as it is written (kaldi/writeback.py), so the disk
keeps pace between fsyncs and the last one owes little. Only ``finish()`` (on success) renames
``<ark>.tmp`` into place and then writes the scp (sorted, absolute paths, atomically); after an
exception the scp is not written, so no scp line can point into an incomplete archive.
Compression uses Kaldi's compressed matrix, method 1 (kAutomaticMethod), byte-identical to
copy-feats --compress=true (speech_reps.kaldi.compress).
"""

import os
import struct
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kaldiio
import numpy as np

from speech_reps.kaldi.compress import compress, compress_many, is_tensor
from speech_reps.kaldi.host_staging import HostStaging, on_device
from speech_reps.kaldi.writeback import start_writeback

COMPRESSION_METHOD = 1  # Kaldi's kAutomaticMethod, copy-feats' default
# The archive's write-out to the disk is started for every this many bytes written (on the
# syncer thread: kaldi/writeback.py), so the disk keeps pace with the writer between fsyncs.
WRITEBACK_BYTES = 32 << 20


def journal_path(ark_path):
    """Where the journal of the archive ``ark_path`` is kept (see the module's text)."""
    return Path(f"{ark_path}.journal")


def _replace_atomically(path, text):
    # a temporary name of its own: parallel jobs may replace files in the same directory
    fd, tmp = tempfile.mkstemp(prefix=f".{Path(path).name}.", dir=Path(path).parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:  # a full disk: no half-written temporary left beside the table
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_scp_like(path, items):
    """A Kaldi table (``key value`` lines), replaced atomically."""
    _replace_atomically(path, "".join(f"{k} {v}\n" for k, v in items))


class FeatureWriter:
    """``with FeatureWriter(ark, scp) as w: w.write(key, mat); ...; w.checkpoint()``.

    ``fingerprint``: a string naming the run (model, options, inputs); with it the writer keeps a
    journal and resumes a journal of the same fingerprint. ``failures`` ({utt: reason}) and
    ``entries`` then already hold what the earlier run finished.
    """

    def __init__(self, ark_path, scp_path, compress=False, fingerprint=None):
        self.ark_path = Path(ark_path).resolve()
        self.scp_path = Path(scp_path)
        self.compress = compress
        self._tmp = Path(f"{self.ark_path}.tmp")
        self._journal_path = journal_path(self.ark_path) if fingerprint else None
        self.entries = []  # (key, "ark:offset"), in write order
        self.num_frames = {}
        self.planned_frames = {}  # utt -> the length the batch plan used (see engine/run.py: _replayed)
        self.seconds = {}  # utt -> seconds of audio behind it (summaries count resumed ones too)
        self.failures = {}  # utt -> reason
        self._pending = []  # journal lines of the batch being written
        self._good = 0  # bytes of complete matrices
        self._pool = None  # threads compressing a batch's matrices (prepare)
        self._packed = {}  # utt -> its compressed bytes, made by prepare for write
        self._staging = HostStaging()  # a GPU's float32 matrices on their way to the host
        self._syncer = None  # the thread making checkpoints durable (made at the first)
        self._sync_error = None  # what stopped it (disk full, an I/O error): raised by the next call
        self.resumed = fingerprint is not None and self._restore(fingerprint)
        self._written_back = self._good  # archive bytes whose write-out has been started
        if not self.resumed:
            self._f = open(self._tmp, "wb")
            if self._journal_path:
                self._journal = open(self._journal_path, "w", encoding="utf-8")
                self._journal.write(f"# {fingerprint}\n")
                self._sync(self._journal)

    def _restore(self, fingerprint):
        if not (self._journal_path.is_file() and self._tmp.is_file()):
            return False
        lines = self._journal_path.read_text(encoding="utf-8").splitlines()
        if not lines or lines[0] != f"# {fingerprint}":
            return False
        batch = []
        for line in lines[1:]:
            kind, _, rest = line.partition(" ")
            if kind == "B":
                for k, key, value in batch:
                    if k == "E":
                        offset, frames, planned, seconds = value.split()
                        self.entries.append((key, f"{self.ark_path}:{offset}"))
                        self.num_frames[key] = int(frames)
                        self.planned_frames[key] = int(planned)
                        self.seconds[key] = float(seconds)
                    else:
                        self.failures[key] = value
                self._good, batch = int(rest), []
            elif kind in ("E", "F"):
                key, _, value = rest.partition(" ")
                batch.append((kind, key, value))
        if self._tmp.stat().st_size < self._good:
            return False
        self._f = open(self._tmp, "r+b")
        self._f.truncate(self._good)
        self._f.seek(self._good)
        self._journal = open(self._journal_path, "a", encoding="utf-8")
        return True

    @staticmethod
    def _sync(f):
        f.flush()
        os.fsync(f.fileno())

    @property
    def processed(self):
        """Utterances already written or failed (by this run or the one it resumes)."""
        return set(self.num_frames) | set(self.failures)

    def prepare(self, ops):
        """Before BackgroundWriter applies ``ops`` (its list of calls): compress the batch's
        matrices at once on a pool of threads (numpy leaves the GIL in the compressor's sorting
        and arithmetic), for ``write`` to take. Compression is the writer's cost, and a GPU host
        has cores to spare; the bytes are the same as one by one. Uncompressed, a GPU's matrices
        start their copies into page-locked blocks (kaldi/host_staging.py), from which ``write``
        writes them."""
        matrices = [(op[1], op[2]) for op in ops if op[0] == "write" and op[2].ndim == 2]
        if not self.compress:  # float32 rows: a GPU's copies to the host queued, in writing order
            self._staging.begin_writes(ops)
            return
        if len(matrices) < 2:
            return
        device_mats = [(key, feats) for key, feats in matrices if on_device(feats)]
        host_mats = [(key, feats) for key, feats in matrices if not on_device(feats)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(min(8, os.cpu_count() or 1), thread_name_prefix="compress")
        packed = self._pool.map(lambda m: compress(m, COMPRESSION_METHOD), [feats for _, feats in host_mats])
        # a GPU's matrices here, together (compress_many), while the threads do the host's
        self._packed.update(zip([key for key, _ in device_mats],
                                compress_many([feats for _, feats in device_mats], COMPRESSION_METHOD)))
        self._packed.update(zip([key for key, _ in host_mats], packed))

    def write(self, key, feats, planned_frames=None, seconds=0.0):
        """Append one matrix; ``planned_frames``: the length the batching used for it, when
        that is not its row count (pooled vectors), journaled so a resume plans the same;
        ``seconds``: of audio, journaled for the summary of a resumed run. ``feats``: an array,
        or a torch tensor on any device: compressed, a GPU's is compressed there and only its
        bytes come to the host (speech_reps.kaldi.compress)."""
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"invalid utterance id {key!r} (empty or containing whitespace)")
        if not (self.compress and is_tensor(feats)):
            feats = np.ascontiguousarray(self._staging.host(feats), dtype=np.float32)
        start = self._good
        if self.compress:  # our compressor: byte-identical to Kaldi's, unlike kaldiio's
            packed = self._packed.pop(key, None)  # prepare's, if it compressed this batch
            self._f.write(f"{key} ".encode() + b"\0B")
            self._f.write(compress(feats, COMPRESSION_METHOD) if packed is None else packed)
        elif feats.ndim == 2:
            self._write_float_matrix(key, feats)
        else:  # a vector (pooled)
            kaldiio.save_ark(self._f, {key: feats})
        self._f.flush()
        self._good = self._f.tell()
        offset = start + len(key.encode()) + 1
        self.entries.append((key, f"{self.ark_path}:{offset}"))
        self.num_frames[key] = feats.shape[0]
        self.planned_frames[key] = feats.shape[0] if planned_frames is None else planned_frames
        self.seconds[key] = seconds
        self._pending.append(f"E {key} {offset} {feats.shape[0]} {self.planned_frames[key]} {seconds!r}")
        if self._good - self._written_back >= WRITEBACK_BYTES:
            self._syncer_thread().submit(start_writeback, self._f.fileno(), self._written_back,
                                         self._good - self._written_back)
            self._written_back = self._good

    def _write_float_matrix(self, key, feats):
        """``key``, then Kaldi's binary float matrix ("\\0B", "FM ", rows and columns as
        size-prefixed int32) with the rows written straight from the array: what kaldiio writes,
        without its copy of the data (the archive's write rate is the data path's ceiling)."""
        rows, cols = feats.shape
        self._f.write(key.encode() + b" \0BFM \x04" + struct.pack("<i", rows) + b"\x04" + struct.pack("<i", cols))
        self._f.write(feats.reshape(-1).view(np.uint8).data)

    def fail(self, key, reason):
        self.failures[key] = reason
        self._pending.append(f"F {key} {' '.join(reason.split())}")

    def checkpoint(self):
        """Make everything written so far durable and resumable: the archive up to here is
        fsynced, then the journal records it, on the syncer thread; the writer goes on meanwhile
        (an fsync waits for the disk, which is slower than the model: done in line, it held the
        whole data path at the disk's pace in bursts). A run killed before the journal line is
        written redoes the batch, as it would one killed before this call."""
        if not self._journal_path:
            return
        self._f.flush()
        lines = "".join(f"{line}\n" for line in self._pending) + f"B {self._good}\n"
        self._pending = []
        self._raise_sync_error()
        self._syncer_thread().submit(self._make_durable, lines)

    def _syncer_thread(self):
        """The thread that waits for the disk (fsyncs, write-out started), in order; made at first use."""
        if self._syncer is None:
            self._syncer = ThreadPoolExecutor(1, thread_name_prefix="fsync")
        return self._syncer

    def _make_durable(self, lines):
        if self._sync_error is not None:  # nothing is journaled after a failed fsync
            return
        try:
            os.fsync(self._f.fileno())
            self._journal.write(lines)
            self._sync(self._journal)
        except BaseException as e:  # noqa: BLE001 - raised in the writer's thread (_raise_sync_error)
            self._sync_error = e

    def _raise_sync_error(self):
        if self._sync_error is not None:
            raise self._sync_error

    def _drain_syncs(self):
        """Wait for the checkpoints queued (they record complete matrices, also on the way out
        of a failed run: its resume starts from them)."""
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)
            self._syncer = None

    def _stop_pool(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def finish(self):
        """The run succeeded: the archive goes into place, then the scp; the journal goes."""
        self._stop_pool()
        self._drain_syncs()
        self._raise_sync_error()
        self._f.truncate(self._good)
        self._sync(self._f)
        self._f.close()
        os.replace(self._tmp, self.ark_path)
        write_scp_like(self.scp_path, self.scp_entries())
        if self._journal_path:
            self._journal.close()
            self._journal_path.unlink()
        self._f = None

    def scp_entries(self):
        """(key, "ark:offset") of every complete matrix, in LC_ALL=C key order."""
        return sorted(self.entries, key=lambda e: e[0].encode())

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self._stop_pool()
        if exc_type is None:
            try:
                self.finish()
            except BaseException:  # an fsync or rename failed: closed as after any other error
                self._close_unfinished()
                raise
            return False
        self._close_unfinished()
        return False

    def _close_unfinished(self):
        """After an error (also one in ``finish``): <ark>.tmp cut back to its complete matrices
        and the journal kept, for a resume; no scp."""
        self._drain_syncs()
        if self._f is not None and not self._f.closed:
            self._f.truncate(self._good)
            self._f.close()
        if self._journal_path and not self._journal.closed:
            self._journal.close()
