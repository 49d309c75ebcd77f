"""DeCoAR: strict checkpoint readers, the encoder, batching, and its entry points (small models)."""

import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, golden_data_dir, golden_wav, make_data_dir, run_tool, write_conf
from decoar_files import mxnet_names, random_weights, write_params, write_torch_checkpoint
from speech_reps.errors import ConfigError
from speech_reps.models.base import Batch
from speech_reps.models.decoar_checkpoint import load_decoar_weights
from speech_reps.models.decoar_net import DeCoAREncoder, reversed_index
from speech_reps.models.formats import WeightsError as CheckpointError
from speech_reps.models.formats.mxnet import ParamsFormatError, read_params
from speech_reps.models.registry import create

FEATURIZE = REPO / "steps" / "featurize.py"
SPEECH_REPS = Path(sys.executable).parent / "speech-reps"


@pytest.fixture(scope="module")
def weights():
    return random_weights(input_dim=40, hidden=32, layers=2)


@pytest.fixture
def params(tmp_path, weights):
    return write_params(tmp_path / "decoar.params", mxnet_names(weights, "legacy", "decoar0_"))


@pytest.mark.parametrize("layout,prefix", [("structural", ""), ("unfused", ""), ("legacy", "decoar0_"),
                                           ("legacy", ""), ("structural", "net_")])
def test_every_gluon_name_layout_reads_back(tmp_path, weights, layout, prefix):
    path = write_params(tmp_path / "w.params", mxnet_names(weights, layout, prefix))
    loaded, sizes, fmt = load_decoar_weights(path)
    assert (sizes, fmt) == ((40, 32, 2), "mxnet")
    assert loaded.keys() == weights.keys()
    assert all(np.array_equal(loaded[k], weights[k]) for k in weights)


def test_pytorch_checkpoint(tmp_path):
    w80 = random_weights(input_dim=80, hidden=16, layers=3)
    loaded, sizes, fmt = load_decoar_weights(write_torch_checkpoint(tmp_path / "c.pt", w80))
    assert (sizes, fmt) == ((80, 16, 3), "pytorch")
    assert all(np.array_equal(loaded[k], w80[k]) for k in w80)


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pytorch_checkpoint_never_runs_pickled_code(tmp_path, weights, capsys):
    path = write_torch_checkpoint(tmp_path / "evil.pt", weights, extra={"x": Payload()})
    with pytest.raises(CheckpointError, match="cannot load as a PyTorch checkpoint without running pickled code"):
        load_decoar_weights(path)
    assert "pickled code ran" not in capsys.readouterr().out


def test_missing_unexpected_and_misshaped_are_all_listed(tmp_path, weights):
    names = mxnet_names(weights, "structural")
    del names["rnn_backward.l1_h2h_bias"]
    names["rnn_forward.l0_i2h_weight"] = np.zeros((4, 4), np.float32)
    names["decoder.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError) as e:
        load_decoar_weights(write_params(tmp_path / "bad.params", names))
    assert str(e.value) == (
        f"{tmp_path}/bad.params: not a DeCoAR encoder: missing: backward_lstm.bias_hh_l1; "
        "unexpected: decoder.weight; wrong shape: forward_lstm.weight_ih_l0 (4, 4) (expected (128, 32))")


def test_unrelated_file_never_becomes_a_model(tmp_path):
    (tmp_path / "x.params").write_bytes(b"this is a text file, not a model")
    with pytest.raises(CheckpointError, match="not an MXNet .params file"):
        load_decoar_weights(tmp_path / "x.params")
    write_params(tmp_path / "other.params", {"conv0_weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(CheckpointError, match="no DeCoAR input projection"):
        load_decoar_weights(tmp_path / "other.params")


def test_truncated_params_names_the_offset(tmp_path, params):
    data = params.read_bytes()
    (tmp_path / "cut.params").write_bytes(data[:1000])
    with pytest.raises(ParamsFormatError, match=r"array of shape \(32, 40\) needs 5120 bytes, file has .* left"):
        read_params(tmp_path / "cut.params")


def test_sparse_arrays_are_refused(tmp_path):
    data = bytearray(write_params(tmp_path / "a.params", {"w": np.zeros(2, np.float32)}).read_bytes())
    data[28:32] = struct.pack("<i", 1)  # storage type of the first array: row_sparse
    (tmp_path / "a.params").write_bytes(bytes(data))
    with pytest.raises(ParamsFormatError, match="storage type 1 .* at byte 24"):
        read_params(tmp_path / "a.params")


def test_reversed_index():
    assert reversed_index(torch.tensor([4, 2]), 0, 4).tolist() == [[3, 2, 1, 0], [1, 0, 2, 3]]
    assert reversed_index(torch.tensor([4, 2]), 1, 3).tolist() == [[2, 1], [0, 2]]


def test_time_chunks_equal_one_pass():
    """Chunks that carry the LSTM state (what bounds an hour-long recording's memory) give the
    frames of one pass over the whole utterance, for chunk sizes that do and do not divide it."""
    torch.manual_seed(0)
    net = DeCoAREncoder(40, hidden=32, layers=2).eval()
    feats = torch.randn(3, 230, 40)
    lengths = torch.tensor([230, 101, 7])
    for b, n in enumerate(lengths.tolist()):
        feats[b, n:] = 0
    with torch.inference_mode():
        whole = net(feats, lengths, chunk=10_000)
        # the same network written out step by step, as the definition reads
        h = net.proj(feats[0])
        fwd, _ = net.forward_lstm(h.unsqueeze(0))
        bwd, _ = net.backward_lstm(h.flip(0).unsqueeze(0))
        assert torch.allclose(whole[0], torch.cat([fwd[0], bwd[0].flip(0)], -1), atol=1e-6)
        for chunk in (1, 7, 100, 229):
            chunked = net(feats, lengths, chunk=chunk)
            for b, n in enumerate(lengths.tolist()):
                assert (chunked[b, :n] - whole[b, :n]).abs().max() <= 1e-6, (chunk, b)


def test_batched_equals_one_by_one(params):
    model = create("decoar", params=str(params))
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((n, 40)).astype(np.float32) for n in (57, 3, 200, 57, 1, 120)]
    keys = [f"u{i}" for i in range(len(inputs))]
    batched = model.featurize(Batch(keys, inputs, [0] * len(keys)))
    for x, out in zip(inputs, batched):
        alone = model.featurize(Batch(["x"], [x], [0]))[0]
        assert out.shape == (len(x), 64) and out.dtype == np.float32
        assert np.abs(out - alone).max() <= 1e-5


def test_backward_half_is_causal_from_the_end(params):
    """Forward output at t sees frames <= t; backward output at t sees frames >= t."""
    model = create("decoar", params=str(params))
    x = np.random.default_rng(2).standard_normal((30, 40)).astype(np.float32)
    y = x.copy()
    y[20:] += 1.0
    a, b = (model.featurize(Batch(["a"], [v], [0]))[0] for v in (x, y))
    assert np.allclose(a[:20, :32], b[:20, :32]) and not np.allclose(a[:20, 32:], b[:20, 32:])


def test_front_end_follows_the_checkpoint(tmp_path, params):
    model = create("decoar", params=str(params))
    opts = model.frontend.options
    assert (opts["num-mel-bins"], opts["dither"], opts["window-type"]) == (40, 0.0, "povey")
    assert (model.frontend.cmvn, model.frontend.norm_vars) == ("utt", True)
    pt = write_torch_checkpoint(tmp_path / "c.pt", random_weights(input_dim=80, hidden=8, layers=1))
    assert create("decoar", params=str(pt)).frontend.options["num-mel-bins"] == 80
    hamming = write_conf(tmp_path / "h.conf", "--window-type=hamming")
    assert create("decoar", params=str(params), feature_config=hamming).frontend.options["window-type"] == "hamming"
    wrong = write_conf(tmp_path / "w.conf", "--num-mel-bins=80")
    with pytest.raises(ConfigError, match=r"w\.conf:1: --num-mel-bins=80, but .* expects 40-dim fbank"):
        create("decoar", params=str(params), feature_config=wrong)


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECH_REPS_ARTIFACTS", str(tmp_path / "art"))
    with pytest.raises(ConfigError, match=rf"DeCoAR weights not found: {tmp_path}/art/decoar-encoder-29b8e2ac\.params"
                                          r"\. Download them with 'utils/download_models.sh decoar' \(MXNet.*zip\) or "
                                          r"'utils/download_models.sh decoar-pt' \(PyTorch"):
        create("decoar")


def test_gpu_without_cuda_is_a_clear_error(params):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="--device cuda:0: this torch build or machine has no CUDA GPU"):
        create("decoar", params=str(params), gpu=0)


@pytest.mark.parametrize("device", ["mps", "xpu", "meta", "hpu"])
def test_a_device_torch_runs_elsewhere_is_one_line(params, device):
    with pytest.raises(ConfigError, match=rf"^--device {device}: speech-reps runs on 'cpu' or 'cuda' \('cuda:N'\)$"):
        create("decoar", params=str(params), device=device)


def test_data_dir_and_seed_api_agree(tmp_path, params):
    from speech_reps.featurize import DeCoARFeaturizer

    import kaldiio

    data = golden_data_dir(tmp_path / "data")
    run_tool(FEATURIZE, "--model", "decoar", "--params", params, "--batch-frames", "400",
             "--progress", "false", data, tmp_path / "out")
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    assert {k: v.shape for k, v in feats.items()} == {
        "spk1-utt1": (318, 64), "spk2-utt1": (297, 64), "spk3-chirp": (168, 64), "spk3-short": (25, 64)}
    assert (tmp_path / "out" / "frame_shift").read_text() == "0.01\n"
    seed = DeCoARFeaturizer(str(params))
    for utt in ["spk1-utt1", "spk3-short"]:
        assert np.abs(seed.file_to_feats(str(golden_wav(utt))) - feats[utt]).max() <= 1e-5
    conf = (tmp_path / "out" / "data" / "conf")
    assert "--num-mel-bins=40" in (conf / "fbank.conf").read_text()
    assert "params_format: mxnet" in (conf / "featurize.yaml").read_text()


def test_single_file_cli(tmp_path, params):
    run_tool(SPEECH_REPS, "featurize", "--model", "decoar", "--params", params,
             "--in-wav", golden_wav("spk3-short"), "--out-npy", tmp_path / "y.npy")
    assert np.load(tmp_path / "y.npy").shape == (25, 64)


def test_options_a_model_does_not_take_are_errors(tmp_path):
    data = make_data_dir(tmp_path / "data", {"a": golden_wav("spk1-utt1")})
    proc = run_tool(FEATURIZE, "--model", "mfcc", "--layer", "3", data, tmp_path / "out", check=False)
    assert proc.returncode == 1 and "featurize.py: model mfcc does not take --layer" in proc.stderr
