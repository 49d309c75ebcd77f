"""The engine's parts around the data path: the Job, the input stage's wave preparation in the
loader workers, the writer thread's deferred work, and model outputs that are torch tensors
(the output path: engine/output.py) written byte-identical to numpy outputs."""

import dataclasses
import threading

import numpy as np
import pytest
import torch

from conftest import golden_wav, make_data_dir, write_conf
from speech_reps.engine.input_stage import InputStage, Ready
from speech_reps.engine.job import Job, check_job
from speech_reps.engine.output import OutputPath
from speech_reps.engine.run import featurize_data_dir
from speech_reps.engine.writer import BackgroundWriter
from speech_reps.errors import ConfigError
from speech_reps.kaldi import FeatureWriter
from speech_reps.models.kaldi_features import Fbank
from speech_reps.models.registry import register


@register(dataclasses.replace(Fbank.spec, name="fbank-as-tensors", summary="test only: fbank as tensors"))
class FbankAsTensors(Fbank):
    """fbank whose outputs are torch tensors, as a model on a device returns them."""

    kind = "fbank"

    def featurize(self, batch):
        return [torch.from_numpy(np.array(x, dtype=np.float32)) for x in batch.inputs]


def test_job_is_checked_once_and_normalised(tmp_path):
    with pytest.raises(ConfigError, match="--pool max"):
        Job(tmp_path, tmp_path / "out", pool="max")
    with pytest.raises(ConfigError, match="--batch-frames 0"):
        Job(tmp_path, tmp_path / "out", batch_frames=0)
    with pytest.raises(ConfigError, match="--num-workers -1"):
        Job(tmp_path, tmp_path / "out", num_workers=-1)
    with pytest.raises(ConfigError, match="--channel -2"):
        Job(tmp_path, tmp_path / "out", channel=-2)
    pooled = Job(str(tmp_path), str(tmp_path / "out"), compress=True, pool="mean")
    assert (pooled.compress, pooled.name, pooled.out_dir, pooled.model_options) == (False, "xvector",
                                                                                    tmp_path / "out", {})
    assert Job(tmp_path, tmp_path, pool="mean", name="x3").name == "x3"
    with pytest.raises(AttributeError):
        pooled.compress = True  # frozen


def test_check_job_resolves_the_data_dir_model_and_output(tmp_path):
    data = make_data_dir(tmp_path / "data", {"u1": str(golden_wav("spk1-utt1"))})
    checked = check_job(Job(data, tmp_path / "out", model="mfcc"))
    assert (checked.featurizer.name, checked.featurizer.dim, checked.vad) == ("mfcc", 13, None)
    assert [u.utt for u in checked.data.utterances] == ["u1"] and checked.out_dir.is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        check_job(Job(data, tmp_path / "file"))


@pytest.mark.parametrize("workers", [0, 1])
def test_ge2e_wave_preparation_runs_in_the_input_stage(workers, tmp_path):
    """GE2E's volume normalisation happens in the loader workers: the stage's Ready input is
    prepare_wave of the audio, whatever the number of workers."""
    import soundfile as sf

    from speech_reps.models.registry import create

    from speech_reps.kaldi import DataDir

    ge2e = create("ge2e")
    quiet = (sf.read(golden_wav("spk1-utt1"), dtype="int16")[0] // 20).astype(np.int16)  # raised to -30 dBFS
    sf.write(tmp_path / "quiet.wav", quiet, 16000, subtype="PCM_16")
    data = make_data_dir(tmp_path / "data", {"u1": str(tmp_path / "quiet.wav")})
    stage = InputStage(ge2e, DataDir.load(data), num_workers=workers)
    errors = []
    (item,) = list(stage.stream(DataDir.load(data).utterances, errors.append))
    audio = quiet.astype(np.float32)
    assert not errors and isinstance(item, Ready)
    assert np.array_equal(item.input, ge2e.prepare_wave(audio)) and not np.array_equal(item.input, audio)
    assert (item.num_samples, item.frames) == (len(audio), ge2e.num_frames(len(audio)))


class Recorder:
    def __init__(self):
        self.calls = []

    def write(self, key, value):
        self.calls.append(("write", key, value, threading.current_thread().name))

    def checkpoint(self):
        self.calls.append(("checkpoint",))


def test_background_writer_runs_functions_in_their_turn_in_its_thread():
    writer, seen = Recorder(), []

    def later():
        seen.append(threading.current_thread().name)
        return [("write", "b", 2)]

    background = BackgroundWriter(writer)
    background.put([("write", "a", 1), later, lambda: seen.append("released"), ("checkpoint",)])
    background.stop()
    background.check()
    assert writer.calls == [("write", "a", 1, "feature-writer"), ("write", "b", 2, "feature-writer"),
                            ("checkpoint",)]
    assert seen == ["feature-writer", "released"]


def test_output_path_hands_host_outputs_over_without_a_copy():
    array = np.ones((3, 4), np.float32)
    tensor = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    host = OutputPath().take([array, tensor, MemoryError("too long")])
    assert not host.deferred
    assert host.arrays[0] is array and np.shares_memory(host.arrays[1], tensor.numpy())
    assert isinstance(host.arrays[2], MemoryError)
    host.wait()


def test_outputs_left_on_a_device_are_bounded_by_a_byte_budget():
    """engine/output.py's DeviceBudget: a batch waits while others hold its bytes' room (one
    always goes through), goes once the writer releases some, and a failed writer's error is
    raised while waiting, not a hang."""
    from speech_reps.engine.output import DeviceBudget

    budget = DeviceBudget(100)
    budget.acquire(150)  # alone: through, however large
    taken = []
    waiting = threading.Thread(target=lambda: (budget.acquire(30), taken.append(30)))
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and not taken
    budget.release(150)
    waiting.join(10)
    assert taken == [30]
    budget.acquire(70)  # 30 + 70 fit
    errors = []

    def failed_writer():
        raise OSError("disk full")

    stuck = DeviceBudget(100, check=failed_writer)
    stuck.acquire(80)
    try:
        stuck.acquire(80)
    except OSError as e:
        errors.append(str(e))
    assert errors == ["disk full"]


def test_host_staging_hands_matrices_over_in_order_through_a_ring_of_blocks():
    """The ring that brings a GPU's float32 matrices to the writer (kaldi/host_staging.py),
    with unpinned blocks on CPU tensors (tests/gpu runs it on a GPU): each matrix exact, its
    block not reused before the next take, a matrix larger than a block (or not begun) left to
    the caller, and what a failed batch left untaken dropped by the next batch's begin."""
    from speech_reps.kaldi.host_staging import HostStaging

    staging = HostStaging(block_bytes=400, blocks=2, pin=False)  # 100 float32 values a block
    a, b, big, d = (torch.randn(rows, 10) for rows in (5, 10, 11, 3))
    staging.begin([a, b, big, d])
    got_a = staging.take(a)
    assert np.array_equal(got_a, a.numpy())
    got_b = staging.take(b)  # a's block is free now, and d's copy went into it
    assert np.array_equal(got_b, b.numpy())
    assert np.array_equal(got_a.reshape(-1)[:30], d.numpy().reshape(-1))
    assert staging.take(big) is None  # 440 bytes: not staged, the writer copies it
    assert np.array_equal(staging.take(d), d.numpy())
    assert np.array_equal(got_b, b.numpy())  # the block taken last is still the writer's
    assert staging.take(torch.ones(2, 2)) is None  # never begun
    staging.begin([a, b])  # a batch whose writes failed: nothing of it taken
    staging.begin([d])
    assert np.array_equal(staging.take(d), d.numpy())


@pytest.mark.parametrize("compress", [False, True])
def test_writer_writes_a_tensor_as_the_same_bytes(compress, tmp_path):
    feats = np.random.default_rng(0).standard_normal((20, 7)).astype(np.float32)
    for name, value in (("np", feats), ("torch", torch.from_numpy(feats.copy()))):
        with FeatureWriter(tmp_path / f"{name}.ark", tmp_path / f"{name}.scp", compress) as writer:
            writer.prepare([("write", "a", value), ("write", "b", value)])
            writer.write("a", value)
            writer.write("b", value)
    assert (tmp_path / "np.ark").read_bytes() == (tmp_path / "torch.ark").read_bytes()


def fbank_arks(tmp_path, models, compress, utterances, bins, batch_frames):
    """The feats.ark bytes each of ``models`` (fbank, or fbank-like models registered by a test)
    writes for ``utterances`` golden utterances; each job must write them all."""
    wavs = ["spk1-utt1", "spk2-utt1", "spk3-chirp", "spk3-short"]
    data = make_data_dir(tmp_path / "data", {f"u{i:02d}": str(golden_wav(wavs[i % 4])) for i in range(utterances)})
    conf = write_conf(tmp_path / "fbank.conf", "--dither=0", f"--num-mel-bins={bins}")
    arks = []
    for model in models:
        out = tmp_path / model
        summary = featurize_data_dir(Job(data, out, model=model, model_options={"feature_config": conf},
                                         compress=compress, batch_frames=batch_frames, progress=False))
        assert (summary.done, summary.failed) == (utterances, 0)
        arks.append((out / "feats.ark").read_bytes())
    return arks


@pytest.mark.parametrize("compress", [False, True])
def test_tensor_outputs_are_written_as_numpy_outputs(compress, tmp_path):
    """A model returning torch tensors goes through the output path to byte-identical output."""
    arks = fbank_arks(tmp_path, ("fbank", "fbank-as-tensors"), compress, utterances=6, bins=23, batch_frames=500)
    assert arks[0] == arks[1] and len(arks[0]) > 1000


@pytest.mark.parametrize("cmvn", ["utt", "spk"])
def test_cmvn_output_is_the_same_for_any_number_of_workers(cmvn, tmp_path):
    """Utterance CMVN runs in the loader workers, speaker CMVN in the input stage: the archive
    is byte-identical with 0 or 2 workers, and it is normalised (every column's mean is 0)."""
    import kaldiio

    wavs = ["spk1-utt1", "spk2-utt1", "spk3-chirp"]
    wav_scp = {f"s{i % 2}-u{i}": str(golden_wav(wavs[i % 3])) for i in sorted(range(6), key=lambda i: (i % 2, i))}
    data = make_data_dir(tmp_path / "data", wav_scp, utt2spk={k: k.split("-")[0] for k in wav_scp})
    conf = write_conf(tmp_path / "fbank.conf", "--dither=0", "--num-mel-bins=23")
    arks = []
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        featurize_data_dir(Job(data, out, model_options={"feature_config": conf, "cmvn": cmvn},
                               num_workers=workers, batch_frames=600, progress=False))
        arks.append((out / "feats.ark").read_bytes())
    assert arks[0] == arks[1]
    feats = dict(kaldiio.load_scp(str(tmp_path / "w0" / "feats.scp")))
    if cmvn == "utt":
        assert all(np.abs(m.mean(axis=0)).max() < 1e-3 for m in feats.values())
    else:
        speaker = np.concatenate([m for k, m in sorted(feats.items()) if k.startswith("s0-")])
        assert np.abs(speaker.mean(axis=0)).max() < 1e-3
        assert np.abs(feats["s0-u0"].mean(axis=0)).max() > 1e-2  # a speaker's mean, not each utterance's


def test_workers_send_16_bit_audio_as_int16_to_the_batched_front_end_only(tmp_path):
    """For the batched GPU front end the workers send a wave of whole numbers in int16 range as
    int16 (half the bytes), the same samples; fractional or out-of-range audio stays float32, and
    no other model input changes type."""
    import soundfile as sf

    from speech_reps.engine.inputs import InputReader, InputSpec, as_int16_if_exact
    from speech_reps.frontend import FeatureOptions, FrontEndSpec
    from speech_reps.kaldi import Utterance
    from speech_reps.models.registry import create

    pcm = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    sf.write(tmp_path / "pcm.wav", pcm, 16000, subtype="PCM_16")
    sf.write(tmp_path / "float.wav", np.array([0.1, -0.5, 0.25], np.float32), 16000, subtype="FLOAT")
    for int16_waves in (True, False):
        reader = InputReader(InputSpec(16000, int16_waves=int16_waves))
        wave, n = reader.read(Utterance("u", "u", str(tmp_path / "pcm.wav")))
        assert wave.dtype == (np.int16 if int16_waves else np.float32) and n == 6
        assert np.array_equal(wave, pcm)
        wave, _ = reader.read(Utterance("v", "v", str(tmp_path / "float.wav")))
        assert wave.dtype == np.float32
    for not_exact in ([0.5, 1.0], [32768.0, 0.0], [-32769.0], [1e10]):
        x = np.array(not_exact, np.float32)
        assert as_int16_if_exact(x) is x
    options = FeatureOptions.from_file("fbank", None)
    on_gpu, on_cpu = (Fbank(FrontEndSpec(options, backend="torch", device=d)) for d in ("cuda:0", "cpu"))
    assert InputSpec.for_model(on_gpu).int16_waves  # the spec only: no GPU is touched
    assert not InputSpec.for_model(on_cpu).int16_waves
    assert not InputSpec.for_model(create("ge2e")).int16_waves

