"""The data path on a CUDA GPU: a batch that does not fit in the GPU's memory goes one by one,
an utterance too long alone fails with a clear reason and the others are written; the
benchmark's seed-style path runs with the GPU front end."""

import logging

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

from bench.gpu_parity import speech_waves
from conftest import make_data_dir
from decoar_files import random_weights, write_torch_checkpoint
from fairseq_files import wav2vec2_checkpoint
from test_bench import assert_seed_style_is_the_engine
from speech_reps.models.base import Batch
from speech_reps.models.registry import create
from speech_reps.models.torch_device import host_array
from speech_reps.engine.job import Job
from speech_reps.engine.run import featurize_data_dir

pytestmark = pytest.mark.gpu
DEVICE = "cuda:0"
RATE = 16000


def peak_bytes(fn):
    """fn()'s result and the most GPU memory it allocated above what was allocated before."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    result = fn()
    torch.cuda.synchronize()
    return result, torch.cuda.max_memory_allocated() - before


def test_out_of_memory_batch_goes_one_by_one_and_too_long_fails_alone(tmp_path, caplog):
    """Under a per-process memory cap between one 30 s utterance's need and a batch of eight's:
    the batch runs again one by one (outputs equal to each alone, uncapped), and a 600 s
    utterance, too long even alone, fails with the reason; the job goes on."""
    params = str(wav2vec2_checkpoint(tmp_path / "w2v2.pt"))
    model = create("wav2vec2", params=params, device=DEVICE)
    base = np.concatenate(speech_waves((6.4,) * 5))
    rng = np.random.default_rng(0)
    waves = {f"a{i}": np.roll(base, 7919 * i)[:30 * RATE] + rng.normal(0, 30, 30 * RATE).astype(np.float32)
             for i in range(8)}
    waves["long"] = np.tile(base, 20)[:600 * RATE]
    scp = {}
    for key, wave in waves.items():
        path = tmp_path / f"{key}.wav"
        sf.write(path, np.clip(np.round(wave), -32768, 32767).astype(np.int16), RATE, subtype="PCM_16")
        waves[key] = sf.read(path, dtype="int16")[0].astype(np.float32)  # what the reader will give
        scp[key] = path
    data = make_data_dir(tmp_path / "data", scp)
    short = [k for k in waves if k != "long"]
    model.featurize(Batch(["w"], [waves["a0"][:RATE]], [RATE]))  # workspaces kept for later calls: not measured

    alone, one_peak = peak_bytes(lambda: {k: host_array(model.featurize(Batch([k], [waves[k]], [30 * RATE]))[0])
                                          for k in short})
    _, batch_peak = peak_bytes(lambda: model.featurize(Batch(short, [waves[k] for k in short], [30 * RATE] * 8)))
    assert batch_peak > 4 * one_peak, (one_peak, batch_peak)
    del model
    torch.cuda.empty_cache()
    cap = torch.cuda.memory_allocated() + (one_peak + batch_peak) // 2
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(cap / total, 0)
    try:
        with caplog.at_level(logging.WARNING, logger="speech_reps.engine.run"):
            summary = featurize_data_dir(Job(data, tmp_path / "out", model="wav2vec2",
                                         model_options={"params": params, "device": DEVICE},
                                         batch_frames=200000, progress=False))
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, 0)
    print(f"cap {cap / 2**20:.0f} MiB: one 30 s utterance {one_peak / 2**20:.0f} MiB, "
          f"eight {batch_peak / 2**20:.0f} MiB")
    assert "batch of 8 utterances ran out of memory; running them one by one" in caplog.text
    assert (summary.done, summary.failed) == (8, 1)
    failed = (tmp_path / "out" / "failed").read_text()
    assert failed.startswith("long the model ran out of memory on 600 s of audio"), failed
    written = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    assert sorted(written) == short
    for key in short:
        assert np.abs(written[key] - alone[key]).max() <= 1e-5, key


def test_seed_style_bench_path_on_the_gpu(tmp_path):
    """python -m bench --device cuda:0 once crashed here: the seed-style path got the wave where
    it wanted features, because a model on a GPU gets the torch front end."""
    params = write_torch_checkpoint(tmp_path / "decoar.pt", random_weights(input_dim=40, hidden=32, layers=2))
    # 1e-4: CMVN per file on the CPU vs batched on the GPU
    assert_seed_style_is_the_engine(tmp_path, {"params": str(params), "device": DEVICE}, 1e-4)
