"""ark/scp writing: read back by kaldiio, compressed or not; never an scp line into a broken ark."""

import sys

import kaldiio
import numpy as np
import pytest

from conftest import kaldi_binary, run_tool
from speech_reps.kaldi import FeatureWriter
from speech_reps.kaldi.compress import compress as compress_matrix

MATS = {"utt-b": np.arange(12, dtype=np.float32).reshape(3, 4),
        "utt-a": np.linspace(-5, 5, 80 * 7, dtype=np.float32).reshape(7, 80),
        "ütt-ç": np.ones((1, 2), dtype=np.float32)}


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, compress):
    with FeatureWriter(tmp_path / "feats.ark", tmp_path / "feats.scp", compress=compress) as w:
        for key, mat in MATS.items():
            w.write(key, mat)
    lines = (tmp_path / "feats.scp").read_text(encoding="utf-8").splitlines()
    assert [line.split()[0] for line in lines] == ["utt-a", "utt-b", "ütt-ç"]  # LC_ALL=C order
    assert all(line.split()[1].startswith(f"{tmp_path}/feats.ark:") for line in lines)  # absolute
    back = dict(kaldiio.load_scp(str(tmp_path / "feats.scp")))
    for key, mat in MATS.items():
        assert back[key].shape == mat.shape
        tol = 0 if not compress else (mat.max() - mat.min()) / 255 + 1e-6
        assert np.abs(back[key] - mat).max() <= tol
    assert dict(kaldiio.load_ark(str(tmp_path / "feats.ark"))).keys() == MATS.keys()
    assert not (tmp_path / "feats.ark.tmp").exists()
    head = {k: len(k.encode()) + 3 for k in MATS}  # "<key> \0B"
    want = sum(head[k] + (len(compress_matrix(m, 1)) if compress else 3 + 10 + 4 * m.size)  # "FM ", 2 sized int32s
               for k, m in MATS.items())
    assert (tmp_path / "feats.ark").stat().st_size == want


def test_compressed_is_kaldis_automatic_method(tmp_path):
    # kAutomaticMethod: speech-feature compression (CM) above 8 rows, two-byte (CM2) otherwise.
    with FeatureWriter(tmp_path / "c.ark", tmp_path / "c.scp", compress=True) as w:
        w.write("long", np.tile(MATS["utt-a"], (3, 1)))
        w.write("short", MATS["utt-a"])
    raw = (tmp_path / "c.ark").read_bytes()
    assert raw.startswith(b"long \x00BCM ") and b"short \x00BCM2 " in raw


@pytest.mark.skipif(not kaldi_binary("copy-feats"), reason="Kaldi binaries not on PATH")
def test_compression_equals_copy_feats(tmp_path):
    mats = {"a": np.tile(MATS["utt-a"], (3, 1)), "b": MATS["utt-b"]}
    with FeatureWriter(tmp_path / "plain.ark", tmp_path / "plain.scp") as w:
        for key, mat in mats.items():
            w.write(key, mat)
    with FeatureWriter(tmp_path / "ours.ark", tmp_path / "ours.scp", compress=True) as w:
        for key, mat in mats.items():
            w.write(key, mat)
    run_tool(kaldi_binary("copy-feats"), "--compress=true", f"ark:{tmp_path}/plain.ark", f"ark:{tmp_path}/kaldi.ark")
    assert (tmp_path / "ours.ark").read_bytes() == (tmp_path / "kaldi.ark").read_bytes()


def test_exception_mid_write_leaves_nothing_reachable_and_resumes(tmp_path, monkeypatch):
    w = FeatureWriter(tmp_path / "f.ark", tmp_path / "f.scp", fingerprint="run-1")
    w.write("a", MATS["utt-a"])
    w.checkpoint()
    real_write = FeatureWriter._write_float_matrix

    def dies_half_way(self, key, feats):
        self._f.write(b"b \x00BFM \x04\x07")  # a matrix header, then the disk is full
        raise OSError("disk full")

    monkeypatch.setattr(FeatureWriter, "_write_float_matrix", dies_half_way)
    with pytest.raises(OSError):
        with w:
            w.write("b", MATS["utt-b"])
    monkeypatch.setattr(FeatureWriter, "_write_float_matrix", real_write)
    assert not (tmp_path / "f.scp").exists() and not (tmp_path / "f.ark").exists()
    assert list(kaldiio.load_ark(str(tmp_path / "f.ark.tmp")))[0][0] == "a"  # cut back to complete matrices

    assert (tmp_path / "f.ark.journal").read_text().splitlines() == ["# run-1", "E a 2 7 7 0.0", "B 2257"]
    with FeatureWriter(tmp_path / "f.ark", tmp_path / "f.scp", fingerprint="run-1") as again:
        assert again.resumed and again.processed == {"a"}
        again.write("b", MATS["utt-b"])
    back = dict(kaldiio.load_scp(str(tmp_path / "f.scp")))
    assert list(back) == ["a", "b"] and np.array_equal(back["a"], MATS["utt-a"])
    assert not (tmp_path / "f.ark.journal").exists()
    fresh = FeatureWriter(tmp_path / "g.ark", tmp_path / "g.scp", fingerprint="run-2")
    fresh._f.close()
    assert not FeatureWriter(tmp_path / "g.ark", tmp_path / "g.scp", fingerprint="other").resumed


def test_bad_key(tmp_path):
    with FeatureWriter(tmp_path / "f.ark", tmp_path / "f.scp") as w:
        with pytest.raises(ValueError, match="whitespace"):
            w.write("a b", MATS["utt-b"])


def test_a_batch_compressed_on_threads_is_byte_identical(tmp_path):
    """The writer thread compresses a batch's matrices at once (FeatureWriter.prepare); the
    archive is the one written matrix by matrix."""
    from speech_reps.engine.writer import BackgroundWriter

    rng = np.random.default_rng(3)
    mats = {f"u{i}": rng.standard_normal((50 + 37 * i, 64)).astype(np.float32) for i in range(9)}
    with FeatureWriter(tmp_path / "one.ark", tmp_path / "one.scp", compress=True) as w:
        for key, mat in mats.items():
            w.write(key, mat, None, 1.0)
    with FeatureWriter(tmp_path / "batch.ark", tmp_path / "batch.scp", compress=True) as w:
        background = BackgroundWriter(w)
        background.put([("write", key, mat, None, 1.0) for key, mat in mats.items()])
        background.stop()
        background.check()
        assert w._pool is not None  # the batch really went through the threads
    assert (tmp_path / "batch.ark").read_bytes() == (tmp_path / "one.ark").read_bytes()


def test_torch_tensors_are_written_as_arrays(tmp_path):
    """A model's output tensor, compressed or not, gives the archive of the same numpy array."""
    torch = pytest.importorskip("torch")
    from speech_reps.engine.writer import BackgroundWriter

    rng = np.random.default_rng(4)
    mats = {f"u{i}": rng.standard_normal((6 + 23 * i, 48)).astype(np.float32) for i in range(5)}
    for compress in (False, True):
        with FeatureWriter(tmp_path / "np.ark", tmp_path / "np.scp", compress=compress) as w:
            for key, mat in mats.items():
                w.write(key, mat)
        with FeatureWriter(tmp_path / "t.ark", tmp_path / "t.scp", compress=compress) as w:
            background = BackgroundWriter(w)
            background.put([("write", key, torch.from_numpy(mat).to(torch.float64), None, 1.0)
                            for key, mat in mats.items()])
            background.stop()
            background.check()
        assert (tmp_path / "t.ark").read_bytes() == (tmp_path / "np.ark").read_bytes(), compress
        assert w.num_frames == {key: mat.shape[0] for key, mat in mats.items()}


def test_a_failed_fsync_stops_the_run_and_journals_nothing_after_it(tmp_path, monkeypatch):
    """Checkpoints are made durable on a thread of their own: an fsync that fails there (an I/O
    error) is raised in the writer (at its next checkpoint, or at the end), no journal line
    records a batch after it, and no scp is written."""
    import os

    real_fsync, calls = os.fsync, {"n": 0}

    def fails_first_archive_fsync(fd):
        calls["n"] += 1
        if calls["n"] == 2:  # the first is the journal's header
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fails_first_archive_fsync)
    with pytest.raises(OSError, match="Input/output"):
        with FeatureWriter(tmp_path / "f.ark", tmp_path / "f.scp", fingerprint="run-1") as w:
            w.write("a", MATS["utt-a"])
            w.checkpoint()
            w.write("b", MATS["utt-b"])
            w.checkpoint()
    assert (tmp_path / "f.ark.journal").read_text().splitlines() == ["# run-1"]
    assert not (tmp_path / "f.scp").exists() and not (tmp_path / "f.ark").exists()
    assert w._f.closed and w._journal.closed


def test_a_failure_in_finish_closes_the_files_and_keeps_the_resume(tmp_path, monkeypatch):
    """finish() itself can fail (the rename, the last fsync): the files are closed as after any
    error, no scp is written, and a rerun resumes to the complete output."""
    import os

    real_replace = os.replace

    def fails_on_the_archive(src, dst):
        if str(dst).endswith("f.ark"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fails_on_the_archive)
    with pytest.raises(OSError, match="No space"):
        with FeatureWriter(tmp_path / "f.ark", tmp_path / "f.scp", fingerprint="run-1") as w:
            w.write("a", MATS["utt-a"])
            w.checkpoint()
    assert w._f.closed and w._journal.closed and not (tmp_path / "f.scp").exists()
    monkeypatch.setattr(os, "replace", real_replace)
    with FeatureWriter(tmp_path / "f.ark", tmp_path / "f.scp", fingerprint="run-1") as again:
        assert again.resumed and again.processed == {"a"}
    assert np.array_equal(dict(kaldiio.load_scp(str(tmp_path / "f.scp")))["a"], MATS["utt-a"])


def test_the_archives_write_out_starts_as_it_is_written(tmp_path, monkeypatch):
    """Every WRITEBACK_BYTES written, the kernel is asked (on the syncer thread) to start
    writing that range to the disk, so the last fsync owes little: the ranges follow each other
    from the start of the archive, or from where a resumed run's archive ended, and the kernel
    accepts them (a regular file on Linux)."""
    import speech_reps.kaldi.writer as writer_module
    from speech_reps.kaldi.writeback import start_writeback

    ranges = []

    def recorded(fd, offset, nbytes):
        ranges.append((offset, nbytes, start_writeback(fd, offset, nbytes)))

    monkeypatch.setattr(writer_module, "WRITEBACK_BYTES", 5000)
    monkeypatch.setattr(writer_module, "start_writeback", recorded)
    mat = np.linspace(-1, 1, 40 * 80, dtype=np.float32).reshape(40, 80)  # 12,800 bytes of rows
    with pytest.raises(RuntimeError):
        with FeatureWriter(tmp_path / "f.ark", tmp_path / "f.scp", fingerprint="run-1") as w:
            for i in range(3):
                w.write(f"u{i}", mat)
            w.checkpoint()
            raise RuntimeError("killed")
    size = (tmp_path / "f.ark.tmp").stat().st_size
    assert [r[:2] for r in ranges] == [(0, size // 3), (size // 3, size // 3), (2 * size // 3, size // 3)]
    assert all(accepted for *_, accepted in ranges) == sys.platform.startswith("linux")
    ranges.clear()
    with FeatureWriter(tmp_path / "f.ark", tmp_path / "f.scp", fingerprint="run-1") as w:
        assert w.resumed
        w.write("u3", mat)
    assert [r[:2] for r in ranges] == [(size, size // 3)]
    assert len(dict(kaldiio.load_scp(str(tmp_path / "f.scp")))) == 4


def test_start_writeback_is_advice_that_never_raises(tmp_path):
    from speech_reps.kaldi.writeback import start_writeback

    with open(tmp_path / "x.bin", "wb") as f:
        f.write(b"\1" * 100_000)
        f.flush()
        assert start_writeback(f.fileno(), 0, 100_000) == sys.platform.startswith("linux")
        fd = f.fileno()
    assert start_writeback(fd, 0, 100_000) is False  # closed: refused, not raised


def test_a_table_that_cannot_be_written_leaves_no_temporary_beside_it(tmp_path, monkeypatch):
    from speech_reps.kaldi.writer import write_scp_like

    write_scp_like(tmp_path / "feats.scp", [("a", "x.ark:3")])

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("speech_reps.kaldi.writer.os.fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_scp_like(tmp_path / "feats.scp", [("b", "y.ark:3")])
    assert [p.name for p in tmp_path.iterdir()] == ["feats.scp"]
    assert (tmp_path / "feats.scp").read_text() == "a x.ark:3\n"
