"""The benchmark tools run at tiny sizes and measure what they claim: the seed-style path writes
what the engine writes, and model_throughput's batched row has real (positive) lengths and rates.
(Speed itself is never asserted: docs/benchmarks.md holds the numbers.)"""

import kaldiio
import numpy as np
import pytest

from bench import model_throughput
from bench.corpus import make_corpus
from bench.measure import seed_style
from decoar_files import random_weights, write_torch_checkpoint
from speech_reps.engine.job import Job
from speech_reps.engine.run import featurize_data_dir


@pytest.fixture(scope="module")
def decoar_params(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    return str(write_torch_checkpoint(d / "decoar.pt", random_weights(input_dim=40, hidden=32, layers=2)))


def assert_seed_style_is_the_engine(tmp_path, options, tolerance, dim=None):
    """The seed's loop (its own front end per file, batch 1) on a tiny corpus writes every
    utterance, equal to the engine's batched output within ``tolerance``."""
    data = make_corpus(tmp_path / "corpus", minutes=0.25, min_seconds=1, max_seconds=4)
    (tmp_path / "seed").mkdir()
    frames = seed_style("decoar", options, data, tmp_path / "seed")
    featurize_data_dir(Job(data, tmp_path / "engine", model="decoar", model_options=options, progress=False))
    seed = dict(kaldiio.load_scp(str(tmp_path / "seed" / "feats.scp")))
    engine = dict(kaldiio.load_scp(str(tmp_path / "engine" / "feats.scp")))
    assert len(engine) >= 4 and sorted(seed) == sorted(engine)
    assert frames == sum(m.shape[0] for m in engine.values())
    for utt, feats in engine.items():
        assert seed[utt].shape == feats.shape and (dim is None or feats.shape[1] == dim)
        assert np.abs(seed[utt] - feats).max() <= tolerance, utt


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_seed_style_writes_what_the_engine_writes(tmp_path, decoar_params, backend):
    assert_seed_style_is_the_engine(tmp_path, {"params": decoar_params, "backend": backend}, 1e-5, dim=64)


def test_batch_lengths_stay_within_the_bucketers_padding():
    lengths = model_throughput.batch_lengths(160000, 128)  # 128 x 10 s: once 5920 * 127 samples < 0
    assert len(lengths) == 128 and lengths[0] == 160000
    assert all(a > b for a, b in zip(lengths, lengths[1:]))
    assert min(lengths) >= 0.9 * 160000


def test_model_throughput_batch_of_128_has_positive_rates(decoar_params, capsys):
    rows = model_throughput.main(["--model", "decoar", "--params", decoar_params, "--seconds", "1",
                                  "--batch", "128", "--repeats", "1"])
    assert [(stage, batch) for stage, batch, _, _ in rows] == [
        ("front end (fbank + CMVN)", 1), ("model", 1), ("model", 128)]
    assert all(fps > 0 and xrt > 0 for _, _, fps, xrt in rows)
    table = capsys.readouterr().out
    assert "| model | 128 |" in table and "-" not in table.split("| model | 128 |")[1].split("\n")[0]


def test_gpu_parity_measurements_run_on_the_cpu(decoar_params):
    """bench.gpu_parity (tests/gpu asserts on it; make gpu-check prints it) measured on the CPU:
    the CPU against itself is exact, and the torch front end meets the golden criteria."""
    from bench import gpu_parity

    r = gpu_parity.model_parity("decoar", {"params": decoar_params}, "cpu")
    assert r["float32"][1] == r["tf32"][1] == 0.0
    assert 0 < r["scale"] <= 1 and r["float32"][0] <= 1e-5
    rows = gpu_parity.frontend_parity("cpu")
    assert [row[0] for row in rows] == [*gpu_parity.FBANK_CASES, "mfcc (unliftered)", "fbank80 + utterance CMVN"]
    for case, near_peak, mean, _ in rows:
        assert near_peak <= (2e-3 if "CMVN" in case else 1e-3), case
        assert mean is None or mean <= 1e-2, case


def test_compress_rate_prints_a_row_per_path(capsys, monkeypatch):
    """bench.compress_rate: the compiled kernels, numpy alone, a CPU tensor, torch's kernels on
    the CPU (no GPU asked)."""
    torch = pytest.importorskip("torch")
    # it runs on one thread (OMP_NUM_THREADS at import, torch's threads in main): both are put
    # back after this test, which the rest of the suite must not inherit
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    from bench.compress_rate import main

    main(["--rows", "12", "--cols", "16", "--methods", "1", "--repeats", "1", "--kaldiio", "false",
          "--device", "none"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "12 x 16" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| compiled", "| numpy", "| torch cpu (the array's path)",
                                                      "| torch kernels, cpu"]
    assert all(float(row.split(" | ")[3]) > 0 for row in rows)
