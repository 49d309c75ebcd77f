"""Defaults by model and device (speech_reps/defaults.py), and that featurize.py and the library
resolve them: the values are the measured ones named in docs/benchmarks.md."""

import os

import kaldiio
import numpy as np

from bench.corpus import make_corpus
from speech_reps import defaults
from speech_reps.engine.job import Job, check_job
from speech_reps.engine.run import featurize_data_dir


def test_front_end_and_workers_by_device(monkeypatch):
    assert defaults.default_fbank_backend("cpu") == defaults.default_fbank_backend(None) == "numpy"
    assert defaults.default_fbank_backend("cuda:1") == "torch"
    assert defaults.default_num_workers("fbank", "cpu") == defaults.default_num_workers("mfcc", None) == 0
    for cores, workers in ((2, 4), (12, 6), (16, 8), (64, 8)):  # half the job's cores, 4 to 8
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
        monkeypatch.setattr(os, "cpu_count", lambda: 128)  # the node's: not what the job may use
        assert defaults.default_num_workers("fbank", "cuda:0") == defaults.default_num_workers("decoar", "cuda") \
            == workers
    monkeypatch.delattr(os, "sched_getaffinity")  # not on Linux: the machine's count
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert defaults.default_num_workers("decoar", "cuda") == 4
    assert defaults.default_num_workers("decoar", "cpu") == defaults.default_num_workers("wav2vec2", "cpu") == 1


def test_batch_frames_by_model_and_device():
    # transformers on a CPU: one utterance per call; other models: 200 s of 10 ms frames
    assert defaults.default_batch_frames("wav2vec2", "cpu", 0.02) == defaults.default_batch_frames("hubert", None) == 1
    assert defaults.default_batch_frames("decoar", "cpu") == 20000
    # a GPU: fbank 1600 s of audio a call, DeCoAR (recurrent) 3200 s with up to 50% padding, in the
    # model's own frames; the models not measured there keep 20000
    assert defaults.default_batch_frames("decoar", "cuda:0", 0.01) == 320000
    assert defaults.default_batch_frames("fbank", "cuda:0", 0.01) == 160000
    assert defaults.default_batch_frames("wav2vec2", "cuda:0", 0.02) == 20000
    assert defaults.default_max_padding("decoar", "cuda") == 0.5
    assert defaults.default_max_padding("decoar", "cpu") == defaults.default_max_padding("fbank", "cuda:0") == 0.1


def test_featurize_with_default_sizes_writes_what_explicit_ones_write(tmp_path, dither0):
    """None for --batch-frames/--num-workers (featurize.py's defaults) runs the numpy front end in
    the main process, and writes what the former explicit settings (native, 1 worker) write,
    within the golden tolerance."""
    data = make_corpus(tmp_path / "corpus", minutes=0.1, min_seconds=1, max_seconds=3)
    conf = dither0  # no dither: comparable frame by frame
    featurize_data_dir(Job(data, tmp_path / "default", model_options={"feature_config": str(conf)},
                           batch_frames=None, num_workers=None, progress=False))
    featurize_data_dir(Job(data, tmp_path / "native", model_options={"feature_config": str(conf), "backend": "native"},
                           batch_frames=20000, num_workers=1, progress=False))
    ours = dict(kaldiio.load_scp(str(tmp_path / "default" / "feats.scp")))
    native = dict(kaldiio.load_scp(str(tmp_path / "native" / "feats.scp")))
    assert sorted(ours) == sorted(native) and len(ours) >= 2
    for utt, feats in native.items():
        assert ours[utt].shape == feats.shape
        near_peak = feats >= feats.max(axis=1, keepdims=True) - 10.0
        assert np.abs(ours[utt] - feats)[near_peak].max() <= 1e-3, utt
    checked = check_job(Job(data, tmp_path / "check", num_workers=None, batch_frames=None))
    assert checked.featurizer.frontend.backend == "numpy"
    assert (checked.inputs.num_workers, checked.job.num_workers, checked.job.batch_frames) == (0, 0, 20000)
