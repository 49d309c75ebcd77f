"""DeCoAR 2.0: the strict checkpoint reader, subsampling, eval-mode determinism, batching,
layers, entry points (small random models; fairseq parity is test_decoar2_parity.py)."""

import kaldiio
import numpy as np
import pytest
import torch

from conftest import REPO, golden_data_dir, golden_wav, golden_wave, run_tool, write_conf
from decoar2_files import random_state, write_checkpoint
from speech_reps.errors import ConfigError
from speech_reps.frontend import CmvnStats, FrontEnd
from speech_reps.models.base import Batch
from speech_reps.models.decoar2 import subsample
from speech_reps.models.formats import WeightsError as FairseqCheckpointError
from speech_reps.models.registry import create

FEATURIZE = REPO / "steps" / "featurize.py"


@pytest.fixture(scope="module")
def state():
    return random_state()


@pytest.fixture(scope="module")
def params(tmp_path_factory, state):
    return write_checkpoint(tmp_path_factory.mktemp("decoar2") / "checkpoint_decoar2.pt", state)


@pytest.fixture(scope="module")
def model(params):
    return create("decoar2", params=str(params))


def test_every_second_frame_is_kept_not_stacked():
    x = np.arange(7, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    assert subsample(x)[:, 0].tolist() == [0, 2, 4, 6] and subsample(x).shape == (4, 3)
    assert subsample(x[:6]).shape == (3, 3)


def test_sizes_front_end_and_frames(model):
    assert (model.dim, model.layers, model.frame_shift, model.sample_rate) == (48, 2, 0.02, 16000)
    opts = model.frontend.options
    assert (opts["num-mel-bins"], opts["dither"], opts["window-type"]) == (80, 0.0, "povey")
    assert (model.frontend.cmvn, model.frontend.norm_vars) == ("utt", True)
    assert not model.net.training
    # fbank: 1 + (N - 400) // 160 frames, then ceil(/2)
    assert [model.num_frames(n) for n in (399, 400, 560, 720, 16000)] == [0, 1, 1, 2, 49]


def test_missing_unexpected_and_misshaped_are_all_listed(tmp_path, state):
    bad = dict(state)
    del bad["encoder.layers.1.fc2.bias"]
    bad["encoder.layers.0.self_attn.q_proj.weight"] = torch.zeros(48, 5)
    path = write_checkpoint(tmp_path / "bad.pt", bad, extra={"decoder.weight": torch.zeros(3)})
    with pytest.raises(FairseqCheckpointError) as e:
        create("decoar2", params=str(path))
    assert str(e.value) == (
        f"{path}: does not match the model its config describes: missing: encoder.layers.1.fc2.bias; "
        "unexpected: decoder.weight; wrong shape: encoder.layers.0.self_attn.q_proj.weight (48, 5) (expected (48, 48))")


def test_training_heads_are_left_out(tmp_path, state, model):
    path = write_checkpoint(tmp_path / "heads.pt", state, extra={
        "quantizer.vars": torch.zeros(1, 8, 4), "project_q.weight": torch.zeros(4, 4), "final_proj.bias": torch.zeros(4)})
    x = np.random.default_rng(0).standard_normal((40, 80)).astype(np.float32)
    with_heads = create("decoar2", params=str(path)).featurize(Batch(["a"], [x], [0]))[0]
    assert np.array_equal(with_heads, model.featurize(Batch(["a"], [x], [0]))[0])


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_checkpoint_never_runs_pickled_code(tmp_path, state, capsys):
    path = write_checkpoint(tmp_path / "evil.pt", state, extra={"x": Payload()})
    with pytest.raises(FairseqCheckpointError, match=r"refusing to load global (__builtin__|builtins)\.print; not loading a checkpoint that would run code"):
        create("decoar2", params=str(path))
    assert "pickled code ran" not in capsys.readouterr().out


def test_deterministic_and_batched_equals_one_by_one(model):
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((n, 80)).astype(np.float32) for n in (57, 3, 400, 58, 1, 251)]
    keys = [f"u{i}" for i in range(len(inputs))]
    batched = model.featurize(Batch(keys, inputs, [0] * len(keys)))
    assert all(np.array_equal(a, b) for a, b in zip(batched, model.featurize(Batch(keys, inputs, [0] * len(keys)))))
    for x, out in zip(inputs, batched):
        alone = model.featurize(Batch(["x"], [x], [0]))[0]
        assert out.shape == ((len(x) + 1) // 2, 48) and out.dtype == np.float32
        assert np.abs(out - alone).max() <= 1e-5


def test_layers(params, model):
    x = np.random.default_rng(2).standard_normal((90, 80)).astype(np.float32)
    run = lambda layer: create("decoar2", params=str(params), layer=layer).featurize(Batch(["a"], [x], [0]))[0]  # noqa: E731
    last = model.featurize(Batch(["a"], [x], [0]))[0]
    assert np.array_equal(run(2), last) and np.abs(run(1) - last).max() > 0.1
    proj = model.net.post_extract_proj(torch.from_numpy(subsample(x))).detach().numpy()
    assert np.abs(run(0) - proj).max() <= 1e-6
    with pytest.raises(ConfigError, match=r"decoar2: --layer 3: the model has layers 0\.\.2"):
        create("decoar2", params=str(params), layer=3)


def test_bin_count_must_match_the_weights(tmp_path, params):
    wrong = write_conf(tmp_path / "f.conf", "--num-mel-bins=40")
    with pytest.raises(ConfigError, match=r"takes 80-dim fbank, the front end gives 40"):
        create("decoar2", params=str(params), feature_config=wrong)


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECH_REPS_ARTIFACTS", str(tmp_path / "art"))
    with pytest.raises(ConfigError, match=rf"DeCoAR 2\.0 weights not found: {tmp_path}/art/checkpoint_decoar2\.pt\. "
                                          r"Download them with 'utils/download_models.sh decoar2'"):
        create("decoar2")


def test_data_dir_and_seed_api_agree(tmp_path, params, model):
    from speech_reps.featurize import DeCoAR2Featurizer

    data = golden_data_dir(tmp_path / "data")
    run_tool(FEATURIZE, "--model", "decoar2", "--params", params, "--batch-frames", "300",
             "--progress", "false", data, tmp_path / "out")
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    assert {k: v.shape for k, v in feats.items()} == {
        "spk1-utt1": (159, 48), "spk2-utt1": (149, 48), "spk3-chirp": (84, 48), "spk3-short": (13, 48)}
    assert (tmp_path / "out" / "frame_shift").read_text() == "0.02\n"
    assert "--num-mel-bins=80" in (tmp_path / "out" / "data" / "conf" / "fbank.conf").read_text()
    wave = golden_wave("spk2-utt1")
    fbank = FrontEnd(model.frontend).features("u", wave)
    want = model.featurize(Batch(["u"], [CmvnStats.of(fbank).apply(fbank, True)], [len(wave)]))[0]
    seed = DeCoAR2Featurizer(str(params)).file_to_feats(str(golden_wav("spk2-utt1")))
    assert np.abs(seed - want).max() <= 1e-5 and np.abs(seed - feats["spk2-utt1"]).max() <= 1e-5


def test_model_modules_import_no_framework():
    import subprocess
    import sys

    code = ("import sys, speech_reps.models.decoar2, speech_reps.models.bertphone, "
            "speech_reps.models.bertphone_checkpoint\n"
            "heavy = [m for m in ('torch', 'mxnet', 'fairseq', 'gluonnlp') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)
