"""BERTphone: the strict .params reader, stacking, long-utterance windows, batching, entry points
(small random models; the full-size comparison with GluonNLP is test_bertphone_parity.py)."""

import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from bertphone_files import random_weights, write_bertphone
from conftest import REPO, golden_data_dir, golden_wave, run_tool, write_conf
from speech_reps.errors import ConfigError
from speech_reps.frontend import CmvnStats, FrontEnd
from speech_reps.models.base import Batch
from speech_reps.models.bertphone import stack_frames, windows
from speech_reps.models.bertphone_checkpoint import load_bertphone_weights
from speech_reps.models.formats import WeightsError as CheckpointError
from speech_reps.models.registry import create

FEATURIZE = REPO / "steps" / "featurize.py"
SPEECH_REPS = Path(sys.executable).parent / "speech-reps"


@pytest.fixture(scope="module")
def weights():
    return random_weights()


@pytest.fixture(scope="module")
def params(tmp_path_factory, weights):
    return write_bertphone(tmp_path_factory.mktemp("bertphone") / "b.params", weights)


@pytest.fixture(scope="module")
def model(params):
    return create("bertphone", params=str(params))


def wav8k(tmp_path, utt):
    """A golden utterance resampled to 8 kHz, int16 wav."""
    x = soxr.resample(golden_wave(utt), 16000, 8000, quality="HQ")
    path = tmp_path / f"{utt}-8k.wav"
    sf.write(path, np.clip(np.round(x), -32768, 32767).astype(np.int16), 8000, subtype="PCM_16")
    return path


@pytest.mark.parametrize("n,rows", [(6, [(0, 1, 2), (3, 4, 5)]),
                                    (7, [(0, 0, 1), (2, 3, 4), (5, 6, 6)]),
                                    (8, [(0, 0, 1), (2, 3, 4), (5, 6, 7)]),
                                    (1, [(0, 0, 0)]), (2, [(0, 0, 1)])])
def test_stacking_follows_the_original_rule(n, rows):
    feats = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    out = stack_frames(feats)
    assert out.shape == (len(rows), 6) and out.dtype == np.float32
    assert [tuple(int(v) for v in r[::2]) for r in out] == rows
    assert stack_frames(np.zeros((0, 40), np.float32)).shape == (0, 120)


def test_long_utterances_are_cut_into_overlapping_windows():
    assert windows(512, 512, 256) == [(0, 512, 0, 512)]
    assert windows(700, 512, 256) == [(0, 512, 0, 350), (188, 700, 350, 700)]
    assert windows(1100, 512, 256) == [(0, 512, 0, 384), (256, 768, 384, 640), (512, 1024, 640, 806),
                                       (588, 1100, 806, 1100)]
    for n in range(513, 3000, 37):
        cuts = windows(n, 512, 256)
        assert cuts[0][2] == 0 and cuts[-1][3] == n
        for (s, e, a, b), nxt in zip(cuts, cuts[1:] + [None]):
            assert e - s == 512 and s <= a < b <= e
            if nxt is not None:
                assert b == nxt[2] and b - nxt[0] >= 128 and e - b >= 128  # context on both sides of a cut


@pytest.mark.parametrize("layout,prefix", [("legacy", ""), ("legacy", "OpenSpeechModel_"), ("structural", "")])
def test_every_gluon_name_layout_reads_back(tmp_path, weights, layout, prefix):
    loaded, sizes = load_bertphone_weights(write_bertphone(tmp_path / "w.params", weights, layout, prefix))
    assert sizes == (120, 48, 96, 2, 512)
    assert loaded.keys() == weights.keys() and all(np.array_equal(loaded[k], weights[k]) for k in weights)


def test_missing_unexpected_and_misshaped_are_all_listed(tmp_path, weights):
    w = dict(weights)
    del w["encoder.transformer_cells.1.proj.bias"]
    w["encoder.transformer_cells.0.ffn.ffn_2.weight"] = np.zeros((48, 3), np.float32)
    from bertphone_files import gluon_names
    from decoar_files import write_params

    names = {**gluon_names(w), "ctc_output_weight": np.zeros((5, 48), np.float32)}
    path = write_params(tmp_path / "bad.params", names)
    with pytest.raises(CheckpointError) as e:
        load_bertphone_weights(path)
    assert str(e.value) == (
        f"{path}: not a BERTphone encoder: missing: encoder.transformer_cells.1.proj.bias; unexpected: "
        "ctc_output_weight; wrong shape: encoder.transformer_cells.0.ffn.ffn_2.weight (48, 3) (expected (48, 96)) "
        "(a training head can be left out with skip_tensors in conf/bertphone.yaml)")
    with pytest.raises(CheckpointError, match="missing: encoder.transformer_cells.1.proj.bias; wrong shape"):
        load_bertphone_weights(path, skip=("ctc_",))


def test_a_training_head_is_skipped_only_when_the_conf_says_so(tmp_path, weights):
    from bertphone_files import gluon_names
    from decoar_files import write_params

    head = {"dense1_weight": np.ones((5, 48), np.float32), "dense1_bias": np.ones(5, np.float32)}
    path = write_params(tmp_path / "head.params", {**gluon_names(weights), **head})
    with pytest.raises(CheckpointError, match=f"{path}: dense0_weight and dense1_weight both read as embed.weight"):
        create("bertphone", params=str(path))
    conf = Path(REPO / "conf" / "bertphone.yaml").read_text().replace("skip_tensors: []", "skip_tensors: [dense1_]")
    (tmp_path / "b.yaml").write_text(conf)
    assert create("bertphone", params=str(path), config=str(tmp_path / "b.yaml")).dim == 48


def test_front_end_and_frames(model, tmp_path):
    opts = model.frontend.options
    assert (opts.kind, opts.sample_rate, opts["num-ceps"], opts["num-mel-bins"], opts["low-freq"],
            opts["high-freq"], opts["use-energy"], opts["dither"]) == ("mfcc", 8000, 40, 40, 40.0, -200.0, False, 0.0)
    assert (model.frontend.cmvn, model.frontend.norm_vars) == ("utt", True)
    assert (model.dim, model.frame_shift, model.sample_rate, model.input) == (48, 0.03, 8000, "fbank")
    # 8 kHz MFCC: 1 + (N - 200) // 80 frames, then ceil(/3)
    assert [model.num_frames(n) for n in (199, 200, 360, 440, 8000)] == [0, 1, 1, 2, 33]
    wrong = write_conf(tmp_path / "m.conf", "--num-ceps=13")
    with pytest.raises(ConfigError, match=r"takes 120-dim input, but 3 stacked 13-dim MFCC frames give 39"):
        create("bertphone", params=model.params_path, feature_config=wrong)


def test_batched_equals_one_by_one_with_long_utterances(model):
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((n, 40)).astype(np.float32) for n in (57, 1600, 3, 200, 2100, 1)]
    keys = [f"u{i}" for i in range(len(inputs))]
    batched = model.featurize(Batch(keys, inputs, [0] * len(keys)))
    for x, out in zip(inputs, batched):
        alone = model.featurize(Batch(["x"], [x], [0]))[0]
        assert out.shape == (-(-len(x) // 3), 48) and out.dtype == np.float32
        assert np.abs(out - alone).max() <= 1e-5


def test_long_utterance_output_is_stitched_from_its_windows(model):
    x = np.random.default_rng(2).standard_normal((2100, 40)).astype(np.float32)  # 700 stacked frames
    out = model.featurize(Batch(["long"], [x], [0]))[0]
    stacked = torch.from_numpy(stack_frames(x))
    with torch.inference_mode():
        first = model.net(stacked[None, :512], torch.tensor([512]))[0].numpy()
        second = model.net(stacked[None, 188:], torch.tensor([512]))[0].numpy()
    assert out.shape == (700, 48)
    assert np.abs(out[:350] - first[:350]).max() <= 1e-5
    assert np.abs(out[350:] - second[350 - 188:]).max() <= 1e-5
    assert np.abs(out[349] - second[349 - 188]).max() > 1e-3  # the cut is where the rule says


def test_positions_beyond_the_learned_ones_are_refused(model):
    with pytest.raises(ValueError, match="513 frames: more than the 512 learned positions"):
        model.net(torch.zeros(1, 513, 120), torch.tensor([513]))


def test_layers(params, model):
    x = np.random.default_rng(3).standard_normal((90, 40)).astype(np.float32)
    last = model.featurize(Batch(["a"], [x], [0]))[0]
    assert np.array_equal(create("bertphone", params=str(params), layer=2).featurize(Batch(["a"], [x], [0]))[0], last)
    first = create("bertphone", params=str(params), layer=1).featurize(Batch(["a"], [x], [0]))[0]
    assert first.shape == (30, 48) and np.abs(first - last).max() > 0.1
    with pytest.raises(ConfigError, match=r"bertphone: --layer 3: the model has layers 0\.\.2"):
        create("bertphone", params=str(params), layer=3)


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECH_REPS_ARTIFACTS", str(tmp_path / "art"))
    with pytest.raises(ConfigError, match=rf"BERTphone weights not found: {tmp_path}/art/bertphone_fisher_02-87159543\.params"
                                          r"\. Download them with 'utils/download_models.sh bertphone'"):
        create("bertphone")


def test_data_dir_needs_8khz_or_allow_resample(tmp_path, params):
    data = golden_data_dir(tmp_path / "data")  # 16 kHz
    proc = run_tool(FEATURIZE, "--model", "bertphone", "--params", params, "--progress", "false",
                    data, tmp_path / "no", check=False)
    assert proc.returncode != 0
    assert ("utterance spk1-utt1" in proc.stderr and "sample rate 16000 Hz, the front end expects 8000 Hz"
            in proc.stderr and "--allow-resample true" in proc.stderr)
    run_tool(FEATURIZE, "--model", "bertphone", "--params", params, "--allow-resample", "true",
             "--progress", "false", data, tmp_path / "out")
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    assert {k: v.shape for k, v in feats.items()} == {
        "spk1-utt1": (106, 48), "spk2-utt1": (99, 48), "spk3-chirp": (56, 48), "spk3-short": (9, 48)}
    assert (tmp_path / "out" / "frame_shift").read_text() == "0.03\n"
    conf = (tmp_path / "out" / "data" / "conf" / "mfcc.conf").read_text()
    assert all(o in conf for o in ("--sample-frequency=8000", "--num-ceps=40", "--high-freq=-200", "--dither=0"))
    # steps/featurize.sh: Kaldi's own --allow-downsample in the front end's conf does the same
    down = write_conf(tmp_path / "down.conf", "--allow-downsample=true")
    run_tool(REPO / "steps" / "featurize.sh", "--nj", "2", "--cmd", REPO / "utils" / "parallel" / "run.pl",
             "--model", "bertphone", "--params", params, "--fbank-config", down, data, tmp_path / "log", tmp_path / "f")
    assert (data / "utt2num_frames").read_text() == "spk1-utt1 106\nspk2-utt1 99\nspk3-chirp 56\nspk3-short 9\n"
    compressed = dict(kaldiio.load_scp(str(data / "feats.scp")))["spk3-short"]  # featurize.sh compresses
    assert compressed.shape == (9, 48) and np.abs(compressed - feats["spk3-short"]).max() <= 0.05


def test_8khz_wav_end_to_end_and_seed_api(tmp_path, params, model):
    from speech_reps.featurize import BertPhoneFeaturizer

    path = wav8k(tmp_path, "spk2-utt1")
    x, rate = sf.read(path, dtype="int16")
    feats = FrontEnd(model.frontend).features("u", x.astype(np.float32))
    want = model.featurize(Batch(["u"], [CmvnStats.of(feats).apply(feats, True)], [len(x)]))[0]
    got = BertPhoneFeaturizer(str(params)).file_to_feats(str(path))
    assert rate == 8000 and got.shape == (model.num_frames(len(x)), 48) == want.shape
    assert np.abs(got - want).max() <= 1e-5
    assert np.array_equal(got, BertPhoneFeaturizer(str(params)).file_to_feats(str(path)))  # deterministic
    run_tool(SPEECH_REPS, "featurize", "--model", "bertphone", "--params", params,
             "--in-wav", path, "--out-npy", tmp_path / "y.npy")
    assert np.abs(np.load(tmp_path / "y.npy") - got).max() <= 1e-5
