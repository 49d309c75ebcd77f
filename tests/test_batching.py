"""The throughput engine: length buckets, loader workers, the writer thread, and that the
output does not depend on the number of workers or the batch size."""

import threading

import kaldiio
import numpy as np
import pytest

from conftest import REPO, golden_wav, make_data_dir, write_conf
from decoar_files import random_weights, write_torch_checkpoint
from speech_reps.engine.batching import LengthBucketer
from speech_reps.kaldi.datadir import Utterance
from speech_reps.frontend import FeatureOptions, FrontEndSpec
from speech_reps.engine.inputs import InputSpec
from speech_reps.engine.job import Job
from speech_reps.engine.run import featurize_data_dir
from speech_reps.engine.prefetch import read_ahead
from speech_reps.engine.writer import BackgroundWriter
from speech_reps.models.base import Featurizer
from speech_reps.models.declaration import ModelSpec
from speech_reps.models.registry import register


def plan(lengths, batch_frames, pool_batches=8):
    bucketer = LengthBucketer(batch_frames, pool_batches)
    return list(bucketer.batches((i, n) for i, n in enumerate(lengths))), bucketer.stats


def test_buckets_cap_padded_size_and_keep_every_utterance_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(100, 2000, size=500).tolist()  # 1-20 s at 10 ms
    batches, stats = plan(lengths, 20000)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(500))
    for b in batches:
        assert max(lengths[i] for i in b) * len(b) <= 20000
    assert stats.real == sum(lengths)
    assert stats.waste < 0.05, stats.waste  # the bound is 10%
    for b in batches:  # and no single call pads more than 10%
        assert sum(lengths[i] for i in b) >= 0.9 * max(lengths[i] for i in b) * len(b)
    # with a pool of one batch the buckets are much smaller: the pool is what fills them
    small, _ = plan(lengths, 20000, pool_batches=1)
    assert len(small) > 2.5 * len(batches)


def test_the_first_batch_waits_for_one_batch_of_audio_not_the_whole_pool():
    """The first pool is one batch's worth: the model's first call comes after about one batch
    of input is read; later pools are full size."""
    read = []

    def stream():
        for i in range(400):
            read.append(i)
            yield i, 100

    batches = LengthBucketer(1000, pool_batches=8).batches(stream())
    assert next(batches) == list(range(10)) and len(read) == 11  # the 11th closes the first batch
    pools = [len(read)]
    for batch in batches:
        if len(read) != pools[-1]:
            pools.append(len(read))
    assert pools[:3] == [11, 91, 171]  # read ahead: 1, then 8 batches a pool


def test_bucket_plan_is_deterministic_and_handles_long_utterances():
    lengths = [50, 30000, 40, 40, 10, 25000, 60]
    first, _ = plan(lengths, 100, pool_batches=2)
    again, _ = plan(lengths, 100, pool_batches=2)
    assert first == again
    assert [1] in first and [5] in first  # longer than batch_frames: alone
    assert sorted(i for b in first for i in b) == list(range(7))
    with pytest.raises(ValueError):
        LengthBucketer(0)


def test_equal_lengths_keep_data_dir_order():
    batches, stats = plan([100] * 10, 300)
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert stats.waste == 0.0


def test_read_ahead_gives_the_same_results_in_the_same_order_with_workers(tmp_path):
    utts = [Utterance(f"u{i}", f"u{i}", str(golden_wav(["spk1-utt1", "spk2-utt1", "spk3-short"][i % 3])))
            for i in range(7)]
    utts.insert(3, Utterance("bad", "bad", str(tmp_path / "missing.wav")))
    options = FeatureOptions.from_file("fbank", None, {"dither": 0, "num-mel-bins": 40})
    spec = InputSpec(16000, FrontEndSpec(options))
    inline = list(read_ahead(utts, spec, 0))
    workers = list(read_ahead(utts, spec, 2, ahead=3))
    assert [r.utt.utt for r in inline] == [r.utt.utt for r in workers] == [u.utt for u in utts]
    for a, b in zip(inline, workers):
        if a.utt.utt == "bad":
            assert a.input is None and "missing.wav" in str(a.error) and str(a.error) == str(b.error)
        else:
            assert a.error is None and a.num_samples == b.num_samples and a.num_samples > 0
            assert np.array_equal(a.input, b.input) and a.input.shape[1] == 40


class SlowWriter:
    def __init__(self):
        self.calls, self.thread = [], None

    def write(self, key, value):
        self.thread = threading.current_thread().name
        self.calls.append(("write", key, value))

    def checkpoint(self):
        if len(self.calls) > 3:
            raise OSError(28, "No space left on device")
        self.calls.append(("checkpoint",))


def test_background_writer_keeps_order_and_raises_its_error():
    writer = SlowWriter()
    background = BackgroundWriter(writer, depth=1)
    background.put([("write", "a", 1), ("write", "b", 2), ("checkpoint",)])
    background.put([("write", "c", 3), ("checkpoint",)])  # fails: "disk full"
    with pytest.raises(OSError, match="No space"):
        for _ in range(5):
            background.put([("write", "d", 4), ("checkpoint",)])
    background.stop()
    assert writer.calls[:4] == [("write", "a", 1), ("write", "b", 2), ("checkpoint",), ("write", "c", 3)]
    assert ("write", "d", 4) not in writer.calls  # nothing after the failure
    assert writer.thread == "feature-writer"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    wavs = ["spk1-utt1", "spk2-utt1", "spk3-chirp", "spk3-short"]
    wav_scp = {f"u{i:02d}": f"{golden_wav(wavs[i % 4])}" for i in range(14)}
    wav_scp["u05"] = f"sox {golden_wav('spk2-utt1')} -t wav - trim 0 0.7 |"  # a pipe, shorter
    return make_data_dir(root / "data", wav_scp)


def read_out(out):
    scp = (out / "feats.scp").read_text().split("\n")
    return [k.split()[0] for k in scp if k], dict(kaldiio.load_scp(str(out / "feats.scp")))


def test_fbank_output_is_byte_identical_for_any_number_of_workers(corpus, tmp_path):
    conf = write_conf(tmp_path / "fbank.conf", "--dither=0", "--num-mel-bins=40")
    arks = []
    for workers in (0, 1, 3):
        out = tmp_path / f"w{workers}"
        summary = featurize_data_dir(Job(corpus, out, model_options={"feature_config": conf},
                                     batch_frames=700, progress=False, num_workers=workers))
        assert summary.done == 14 and summary.failed == 0
        arks.append(((out / "feats.ark").read_bytes(), (out / "feats.scp").read_text().replace(str(out), "")))
    assert arks[0] == arks[1] == arks[2]


def test_decoar_output_does_not_depend_on_batch_size_or_workers(corpus, tmp_path):
    params = write_torch_checkpoint(tmp_path / "decoar.pt", random_weights(input_dim=80, hidden=32, layers=2))
    results = []
    for workers, batch_frames in ((0, 1), (2, 900), (1, 100000)):
        out = tmp_path / f"d{workers}_{batch_frames}"
        featurize_data_dir(Job(corpus, out, model="decoar", model_options={"params": str(params)},
                           batch_frames=batch_frames, progress=False, num_workers=workers))
        results.append(read_out(out))
    keys, reference = results[0]
    assert keys == sorted(keys) and len(keys) == 14
    for other_keys, other in results[1:]:
        assert other_keys == keys
        for k in keys:
            assert other[k].shape == reference[k].shape and reference[k].shape[1] == 64
            assert np.abs(other[k] - reference[k]).max() <= 1e-5, k


def test_torch_front_end_in_workers_matches_native(corpus, tmp_path):
    """--fbank-backend torch on the CPU runs per utterance in the loader workers."""
    conf = write_conf(tmp_path / "fbank.conf", "--dither=0", "--num-mel-bins=40")
    outs = {}
    for backend, workers in (("native", 0), ("torch", 2)):
        out = tmp_path / backend
        featurize_data_dir(Job(corpus, out, model_options={"feature_config": conf, "backend": backend},
                           batch_frames=700, progress=False, num_workers=workers))
        outs[backend] = read_out(out)
    assert outs["native"][0] == outs["torch"][0]
    for key, native in outs["native"][1].items():
        torch_feats = outs["torch"][1][key]
        near_peak = native >= native.max(axis=1, keepdims=True) - 10.0
        assert torch_feats.shape == native.shape
        assert np.abs(torch_feats - native)[near_peak].max() <= 1e-3, key


def test_an_utterance_longer_than_a_batch_does_not_make_every_later_call_a_batch_of_one():
    """A left-over batch that is already full is cut at once: the long utterance is a call of
    its own and the short ones after it still share calls."""
    lengths = [900] + [10] * 40
    batches, _ = plan(lengths, 100)
    assert [0] in batches and len(batches) <= 6, batches
    assert sorted(i for b in batches for i in b) == list(range(41))


def _children_within(seconds, count):
    import multiprocessing
    import time

    deadline = time.monotonic() + seconds
    while len(multiprocessing.active_children()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(multiprocessing.active_children())


def test_loaders_start_before_a_pass_and_serve_passes_of_other_specs(tmp_path):
    """The workers exist before anything is read (they start while the model loads); one pool
    reads pass after pass, each by its own spec, as this process reads them; closing ends them."""
    import multiprocessing

    from speech_reps.engine.inputs import InputReader
    from speech_reps.engine.prefetch import Loaders

    utts = [Utterance(f"u{i}", f"u{i}", str(golden_wav(["spk1-utt1", "spk3-short"][i % 2]))) for i in range(5)]
    fbank = InputSpec(16000, FrontEndSpec(FeatureOptions.from_file("fbank", None, {"dither": 0})))
    loaders = Loaders(2)
    try:
        assert _children_within(60, 2) == 2
        for spec in (fbank, InputSpec(8000, allow_resample=True), fbank):
            expected = [InputReader(spec).load(u) for u in utts]
            got = list(loaders.read(utts, spec, ahead=2))
            assert [g.utt.utt for g in got] == [u.utt for u in utts]
            assert all(np.array_equal(a.input, b.input) and a.num_samples == b.num_samples
                       for a, b in zip(expected, got))
        partial = loaders.read(utts, fbank)
        assert next(partial).utt.utt == "u0"
        partial.close()  # a pass left early; the next one starts from its own first utterance
        assert [g.utt.utt for g in loaders.read(utts[:2], fbank)] == ["u0", "u1"]
    finally:
        loaders.close()
    assert not multiprocessing.active_children()
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]
    with pytest.raises(RuntimeError, match="closed"):
        list(loaders.read(utts, fbank))


def test_loaders_end_a_pass_cut_short_with_an_error_and_outlive_a_pass_that_failed(capfd):
    """A pass closed under its reader raises (it does not look complete); an error inside one
    pass ends that pass alone; two passes at once are refused (they run in turn); a ctrl-c
    that reaches an idle worker ends it without a traceback."""
    import signal
    import subprocess
    import sys

    from speech_reps.engine import prefetch

    utts = [Utterance(f"u{i}", f"u{i}", str(golden_wav("spk3-short"))) for i in range(40)]

    def broken():
        yield utts[0]
        raise ValueError("the utterance list broke")

    spec = InputSpec(16000)
    loaders = prefetch.Loaders(1)
    try:
        with pytest.raises(ValueError, match="the utterance list broke"):
            list(loaders.read(broken(), spec))
        assert [g.utt.utt for g in loaders.read(utts[:3], spec)] == ["u0", "u1", "u2"]
        first = loaders.read(utts, spec)
        assert next(first).utt.utt == "u0"
        with pytest.raises(RuntimeError, match="reading another pass"):
            next(loaders.read(utts, spec))
        first.close()
        cut = loaders.read(utts, spec)
        next(cut)
        closer = threading.Thread(target=loaders.close)
        closer.start()
        with pytest.raises(RuntimeError, match="closed during a pass"):
            list(cut)
        closer.join()
    finally:
        loaders.close()
    # a worker as the pool starts it (its initializer), idle: ctrl-c ends it quietly. (A worker of
    # a pool cannot be caught idle without a race: it answers before leaving the result's send.)
    code = ("import os, time; from speech_reps.engine import prefetch; prefetch._start_worker(os.getppid()); "
            "print('idle', flush=True); time.sleep(60)")
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=REPO)
    assert worker.stdout.readline().strip() == "idle"
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 128 + signal.SIGINT and "Traceback" not in err, err
    assert "Traceback" not in capfd.readouterr().err


@register(ModelSpec(name="means-10ms", summary="test only: a waveform model, 10 ms means", dim="1",
                    frame_shift="10 ms", input_rate=16000, input="16 kHz waveform", has_conf=False))
class Means(Featurizer):
    """A waveform model as cheap as can be: each 10 ms of audio's mean."""

    input, sample_rate, frame_shift, dim = "waveform", 16000, 0.01, 1

    @classmethod
    def from_options(cls):
        return cls()

    def num_frames(self, num_samples):
        return num_samples // 160

    def featurize(self, batch):
        return [np.asarray(x[:len(x) // 160 * 160], np.float32).reshape(-1, 160).mean(1, keepdims=True)
                for x in batch.inputs]


def test_inputs_foreseen_before_the_model_are_those_it_asks_for():
    """InputSpec.before_model guesses, from a model's class and options alone, the spec the
    model gives once made: a waveform model's, and a fbank model's on a GPU (whose workers only
    read the audio); no guess where the workers would run the front end or the model's own
    wave preparation."""
    from speech_reps.models.kaldi_features import Fbank
    from speech_reps.models.registry import create, get_model_class

    options = FeatureOptions.from_file("fbank", None)
    on_gpu = Fbank(FrontEndSpec(options, backend="torch", device="cuda:0"))  # the spec only: no GPU touched
    assert InputSpec.before_model(Fbank, {"device": "cuda:0"}) == InputSpec.for_model(on_gpu)
    assert InputSpec.before_model(Fbank, {"gpu": 0}, True, 1, 9.0) == InputSpec.for_model(on_gpu, True, 1, 9.0)
    assert InputSpec.before_model(Means, {}, True) == InputSpec.for_model(Means(), True)
    assert InputSpec.before_model(Fbank, {}) is None  # the CPU front end runs in the workers
    assert InputSpec.before_model(Fbank, {"device": "cuda:0", "backend": "native"}) is None
    assert InputSpec.before_model(get_model_class("ge2e"), {}) is None  # its own wave preparation
    assert InputSpec.for_model(create("ge2e")).prepare is not None


def test_loaders_read_before_the_first_pass_and_keep_it_only_for_the_same_utterances_and_spec(tmp_path):
    """Loaders.begin reads while the model loads; the next read takes that pass over when it
    asks for the same utterances with an equal spec (each recording read once), and else drops
    it, queued or under way, and reads afresh with its own spec."""
    import time

    from speech_reps.engine.inputs import InputReader
    from speech_reps.engine.prefetch import Loaders

    log = tmp_path / "reads"
    wav = golden_wav("spk1-utt1")
    utts = [Utterance(f"u{i}", f"u{i}", f"sh -c 'echo u{i} >> {log}; cat {wav}' |") for i in range(6)]
    spec = InputSpec(16000)
    loaders = Loaders(2)
    try:
        loaders.begin(utts, InputSpec(16000))
        deadline = time.monotonic() + 60
        while len(log.read_text().split() if log.exists() else []) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)  # every utterance read before anyone asked
        got = list(loaders.read(list(utts), spec))  # the same utterances, in a list of their own
        assert [g.utt.utt for g in got] == [u.utt for u in utts]
        assert sorted(log.read_text().split()) == [u.utt for u in utts]  # each read once
        expected = InputReader(spec).load(utts[0])
        assert all(np.array_equal(g.input, expected.input) for g in got)

        log.unlink()
        loaders.begin(utts, InputSpec(8000, allow_resample=True))  # a wrong guess: dropped ...
        while not log.exists() and time.monotonic() < deadline + 60:
            time.sleep(0.01)  # ... under way (stopped), not queued (taken off the queue, below)
        resampled = list(loaders.read(utts, spec))
        assert all(np.array_equal(g.input, expected.input) for g in resampled)
        loaders.begin(utts, spec)
        loaders.begin(utts, spec)  # a second is not queued behind the first
        assert [g.utt.utt for g in loaders.read(utts[2:4], spec)] == ["u2", "u3"]  # other utterances
        assert [g.utt.utt for g in loaders.read(utts, spec)] == [u.utt for u in utts]  # no early pass left
    finally:
        loaders.close()
    closed = Loaders(1)
    closed.begin(utts, spec)
    closed.close()  # an early pass nobody took ends with the workers
    with pytest.raises(RuntimeError, match="closed"):
        list(closed.read(utts, spec))


def test_a_job_reads_while_its_model_loads_and_reads_each_utterance_once(tmp_path, monkeypatch):
    """featurize_data_dir with a model whose inputs can be foreseen: the workers have read
    utterances before the model exists, the job uses what they read (each recording's command
    ran once), and the archive is the one a job without workers writes."""
    import time

    from speech_reps.models import registry

    log = tmp_path / "reads"
    wavs = {f"u{i}": golden_wav(["spk1-utt1", "spk3-short"][i % 2]) for i in range(8)}
    scp = {utt: f"sh -c 'echo {utt} >> {log}; cat {path}' |" for utt, path in wavs.items()}
    data = make_data_dir(tmp_path / "data", scp)
    read_before = []
    create = registry.create

    def create_after_the_workers_read(*args, **options):
        deadline = time.monotonic() + 60
        while not log.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        read_before.append(log.exists())
        return create(*args, **options)

    monkeypatch.setattr(registry, "create", create_after_the_workers_read)
    featurize_data_dir(Job(data, tmp_path / "workers", model="means-10ms", num_workers=2, progress=False))
    assert read_before == [True]
    assert sorted(log.read_text().split()) == sorted(wavs)
    monkeypatch.setattr(registry, "create", create)
    featurize_data_dir(Job(data, tmp_path / "alone", model="means-10ms", num_workers=0, progress=False))
    assert (tmp_path / "workers" / "feats.ark").read_bytes() == (tmp_path / "alone" / "feats.ark").read_bytes()


def test_no_reading_before_the_model_for_a_run_that_resumes_or_reuses_an_earlier_one(tmp_path):
    """A journal to resume (or, with --reuse, a finished run) means the first pass will not read
    the data dir from its start: the workers then wait for it (no `cmd |` of wav.scp run twice)."""
    from speech_reps.engine.job import _earlier_run

    out = tmp_path / "out"
    job = Job(tmp_path / "data", out, model="means-10ms")
    assert not _earlier_run(job)
    (out / "layer4").mkdir(parents=True)
    (out / "layer4" / "feats.ark.journal").write_text("# a layer sweep's\n")
    assert _earlier_run(job)
    (out / "layer4" / "feats.ark.journal").unlink()
    (out / "feats.done").write_text("done\n")
    assert not _earlier_run(job) and _earlier_run(Job(tmp_path / "data", out, model="means-10ms", reuse=True))
    (out / "feats.ark.journal").write_text("# a killed run's\n")
    assert _earlier_run(job)
    assert not _earlier_run(Job(tmp_path / "data", out, model="means-10ms", pool="mean"))  # xvector.ark's


def test_a_job_starts_its_loader_workers_before_its_model(tmp_path, monkeypatch):
    """featurize_data_dir: the workers start while the model loads (its weights, torch's import),
    not after; and they are gone when the job ends."""
    import multiprocessing

    from speech_reps.models import registry

    seen = []
    create = registry.create

    def create_after_a_look(*args, **options):
        seen.append(_children_within(60, 1))
        return create(*args, **options)

    monkeypatch.setattr(registry, "create", create_after_a_look)
    params = write_torch_checkpoint(tmp_path / "decoar.pt", random_weights(input_dim=80, hidden=16, layers=1))
    data = make_data_dir(tmp_path / "data", {"a": golden_wav("spk1-utt1"), "b": golden_wav("spk3-short")})
    summary = featurize_data_dir(Job(data, tmp_path / "out", model="decoar", model_options={"params": str(params)},
                                     num_workers=1, progress=False))
    assert summary.done == 2 and seen == [1]
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("budget", [256 << 20, 1])
def test_workers_read_on_while_the_engine_is_away_within_the_budget(budget, monkeypatch):
    """While the engine is away (a model call), a thread takes the workers' results and submits
    more: with room in AHEAD_BYTES every utterance is read without the engine asking; with none,
    no more than ``ahead`` are submitted past the ones ready. The order stays the data dir's."""
    import time
    from concurrent.futures import ProcessPoolExecutor

    from speech_reps.engine import prefetch

    submitted = []

    class Counting(ProcessPoolExecutor):
        def submit(self, fn, *args):
            if fn is prefetch._read:  # not the tasks that only start the workers
                submitted.append(args[1].utt)
            return super().submit(fn, *args)

    monkeypatch.setattr(prefetch, "ProcessPoolExecutor", Counting)
    monkeypatch.setattr(prefetch, "AHEAD_BYTES", budget)
    utts = [Utterance(f"u{i:03d}", f"u{i:03d}", str(golden_wav("spk3-short"))) for i in range(60)]
    stream = read_ahead(utts, InputSpec(16000), 1, ahead=2)
    assert next(stream).utt.utt == "u000"
    if budget > 1:
        deadline = time.monotonic() + 60
        while len(submitted) < len(utts) and time.monotonic() < deadline:
            time.sleep(0.05)  # the engine is away; the workers are not
        assert len(submitted) == len(utts)
    else:
        time.sleep(1.0)
        # taken (1), ready (1: the budget is full), in the thread's hand (1), submitted (ahead 2)
        assert len(submitted) <= 5
    assert [item.utt.utt for item in stream] == [u.utt for u in utts[1:]]


def test_a_stream_closed_early_stops_its_reading_thread():
    """The engine stops early (an error, ctrl-c): closing the stream ends the read-ahead thread
    and the workers, without waiting for the utterances left."""
    import threading
    import time

    utts = [Utterance(f"u{i:03d}", f"u{i:03d}", str(golden_wav("spk1-utt1"))) for i in range(500)]
    stream = read_ahead(utts, InputSpec(16000), 1)
    next(stream)
    start = time.monotonic()
    stream.close()
    assert time.monotonic() - start < 10
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]
