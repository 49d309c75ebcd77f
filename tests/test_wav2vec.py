"""wav2vec 1.0, wav2vec 2.0 and HuBERT from fairseq-format checkpoints (small configs)."""

import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from conftest import REPO, golden_data_dir, golden_wav, run_tool
from fairseq_files import SMALL_W2V, wav2vec2_checkpoint, wav2vec_checkpoint
from speech_reps.errors import ConfigError
from speech_reps.models.base import Batch
from speech_reps.models.formats import WeightsError as FairseqCheckpointError
from speech_reps.models.registry import create
from speech_reps.models.wav2vec import conv_frames, kaldi_aligned_frames
from speech_reps.models.wav2vec_net import eval_layers

FEATURIZE = REPO / "steps" / "featurize.py"
SPEECH_REPS = Path(sys.executable).parent / "speech-reps"
LENGTHS = (16000, 4321, 9999, 16000, 7001, 465)  # several lengths in one batch, two equal


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("fairseq")
    return {
        "wav2vec": wav2vec_checkpoint(d / "w2v.pt"),
        "wav2vec2": wav2vec2_checkpoint(d / "w2v2_gn.pt"),
        "wav2vec2_ln": wav2vec2_checkpoint(d / "w2v2_ln.pt", normalize=True, extractor_mode="layer_norm",
                                           layer_norm_first=True, conv_bias=True),
        "hubert": wav2vec2_checkpoint(d / "hubert.pt", hubert=True),
    }


def waves(lengths=LENGTHS, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * 3000).astype(np.float32) for n in lengths]


@pytest.mark.parametrize("name,model,options", [
    ("wav2vec", "wav2vec", {}), ("wav2vec", "wav2vec", {"output": "z"}),
    ("wav2vec2", "wav2vec2", {}), ("wav2vec2", "wav2vec2", {"layer": 1}), ("wav2vec2", "wav2vec2", {"layer": 0}),
    ("wav2vec2_ln", "wav2vec2", {}), ("hubert", "hubert", {}),
])
def test_batched_equals_one_by_one(ckpts, name, model, options):
    m = create(model, params=str(ckpts[name]), **options)
    xs = waves()
    batched = m.featurize(Batch([f"u{i}" for i in range(len(xs))], xs, [len(x) for x in xs]))
    for x, out in zip(xs, batched):
        alone = m.featurize(Batch(["x"], [x], [len(x)]))[0]
        assert out.shape == (m.num_frames(len(x)), m.dim) and out.dtype == np.float32
        assert np.abs(out - alone).max() <= 1e-5


def test_group_norm_statistics_ignore_padding(ckpts):
    """Zero padding would shift wav2vec 1.0's group-norm statistics: the short utterance must not
    change when it shares a batch with a long one."""
    m = create("wav2vec", params=str(ckpts["wav2vec"]))
    short, long_ = waves((2000, 48000))
    alone = m.featurize(Batch(["s"], [short], [2000]))[0]
    together = m.featurize(Batch(["l", "s"], [long_, short], [48000, 2000]))[1]
    assert np.abs(alone - together).max() <= 1e-5
    padded = m.featurize(Batch(["p"], [np.concatenate([short, np.zeros(46000, np.float32)])], [48000]))[0]
    assert np.abs(padded[:len(alone) - 1] - alone[:-1]).max() > 1e-3  # what unmasked statistics would do


def test_kaldi_frame_alignment_rule():
    layers = eval_layers(SMALL_W2V["conv_feature_layers"])  # wav2vec_large's encoder: 465 samples, hop 160
    for n in range(465, 20000, 7):
        kaldi = 1 + (n - 400) // 160
        model = conv_frames(layers, n)
        assert model == 1 + (n - 465) // 160
        assert kaldi - model == (1 if (n - 400) % 160 < 65 else 0)
        assert kaldi_aligned_frames(model, n) == kaldi
    assert kaldi_aligned_frames(conv_frames(layers, 464), 464) == 0


def test_wav2vec_output_has_kaldis_frame_count(ckpts):
    m = create("wav2vec", params=str(ckpts["wav2vec"]))
    n = 400 + 160 * 30 + 10  # (N - 400) mod 160 = 10 < 65: wav2vec has one frame fewer
    out = m.featurize(Batch(["u"], waves((n,)), [n]))[0]
    assert out.shape == (31, 48) == (1 + (n - 400) // 160, m.dim)
    assert np.array_equal(out[-1], out[-2])  # the last frame repeated
    assert (m.dim, m.frame_shift) == (48, 0.01)
    assert create("wav2vec", params=str(ckpts["wav2vec"]), output="z").dim == 32


def test_wav2vec2_frames_and_layers(ckpts):
    m = create("wav2vec2", params=str(ckpts["wav2vec2"]))
    assert (m.dim, m.frame_shift, m.num_frames(16000)) == (24, 0.02, 49)
    x = waves((16000,))
    last, first, proj = (create("wav2vec2", params=str(ckpts["wav2vec2"]), layer=layer).featurize(
        Batch(["u"], x, [16000]))[0] for layer in (None, 1, 0))
    assert last.shape == first.shape == proj.shape == (49, 24)
    assert not np.allclose(last, first) and not np.allclose(first, proj)
    assert create("wav2vec2", params=str(ckpts["wav2vec2"]), layer=2).featurize(Batch(["u"], x, [16000]))[0] \
        == pytest.approx(last)  # post-LN: the last layer's output is the model output
    with pytest.raises(ConfigError, match="--layer 3: the model has layers 0..2"):
        create("wav2vec2", params=str(ckpts["wav2vec2"]), layer=3)


def test_normalize_follows_the_task_config(ckpts):
    m = create("wav2vec2", params=str(ckpts["wav2vec2_ln"]))
    assert m.normalize and not create("hubert", params=str(ckpts["hubert"])).normalize
    x = waves((8000,))[0]
    a, b = (m.featurize(Batch(["u"], [v], [8000]))[0] for v in (x, 3 * x + 500))
    assert np.abs(a - b).max() < 1e-3  # per-utterance normalisation removes gain and offset


def test_strict_loading_lists_the_tensors(tmp_path, ckpts):
    ckpt = torch.load(ckpts["wav2vec2"], weights_only=False)
    del ckpt["model"]["encoder.layers.1.fc2.bias"]
    ckpt["model"]["encoder.extra.weight"] = torch.zeros(2)
    ckpt["model"]["layer_norm.weight"] = torch.zeros(7)
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(FairseqCheckpointError) as e:
        create("wav2vec2", params=str(tmp_path / "bad.pt"))
    assert str(e.value) == (f"{tmp_path}/bad.pt: does not match the model its config describes: "
                            "missing: encoder.layers.1.fc2.bias; unexpected: encoder.extra.weight; "
                            "wrong shape: layer_norm.weight (7,) (expected (32,))")


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_never_runs(tmp_path, ckpts, capsys):
    ckpt = torch.load(ckpts["wav2vec"], weights_only=False)
    ckpt["extra"] = Payload()
    torch.save(ckpt, tmp_path / "evil.pt")
    with pytest.raises(FairseqCheckpointError, match=r"refusing to load global (__builtin__|builtins)\.print"):
        create("wav2vec", params=str(tmp_path / "evil.pt"))
    assert "pickled code ran" not in capsys.readouterr().out


def test_conv_spec_is_never_evaluated_as_code():
    with pytest.raises(ValueError, match="invalid conv layer spec"):
        eval_layers("[__import__('os').system('true')]")


@pytest.mark.parametrize("overrides,message", [
    ({"vq_type": "gumbel"}, "vq_type='gumbel' is not supported"),
    ({"aggregator": "gru"}, "aggregator='gru' is not supported"),
])
def test_unsupported_wav2vec_variants(tmp_path, overrides, message):
    with pytest.raises(FairseqCheckpointError, match=message):
        create("wav2vec", params=str(wav2vec_checkpoint(tmp_path / "v.pt", **overrides)))


def test_not_a_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "x.pt")
    with pytest.raises(FairseqCheckpointError, match="not a fairseq checkpoint"):
        create("hubert", params=str(tmp_path / "x.pt"))


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECH_REPS_ARTIFACTS", str(tmp_path / "art"))
    with pytest.raises(ConfigError, match=rf"wav2vec weights not found: {tmp_path}/art/wav2vec_large\.pt\. .*wav2vec_large\.pt"):
        create("wav2vec")


def test_entry_points(tmp_path, ckpts):
    from speech_reps.featurize import Wav2VecFeaturizer

    data = golden_data_dir(tmp_path / "data")
    run_tool(FEATURIZE, "--model", "wav2vec", "--params", ckpts["wav2vec"], "--progress", "false",
             "--batch-frames", "500", data, tmp_path / "w2v")
    feats = dict(kaldiio.load_scp(str(tmp_path / "w2v" / "feats.scp")))
    kaldi = {"spk1-utt1": 318, "spk2-utt1": 297, "spk3-chirp": 168, "spk3-short": 25}  # Kaldi's fbank counts
    assert {k: v.shape for k, v in feats.items()} == {k: (n, 48) for k, n in kaldi.items()}
    assert (tmp_path / "w2v" / "frame_shift").read_text() == "0.01\n"
    seed = Wav2VecFeaturizer(str(ckpts["wav2vec"])).file_to_feats(str(golden_wav("spk2-utt1")))
    assert np.abs(seed - feats["spk2-utt1"]).max() <= 1e-5

    run_tool(FEATURIZE, "--model", "hubert", "--params", ckpts["hubert"], "--layer", "1",
             "--progress", "false", data, tmp_path / "hubert")
    assert (tmp_path / "hubert" / "frame_shift").read_text() == "0.02\n"
    assert "spk3-short 13\n" in (tmp_path / "hubert" / "utt2num_frames").read_text()
    assert "layer: 1" in (tmp_path / "hubert" / "data" / "conf" / "featurize.yaml").read_text()

    run_tool(SPEECH_REPS, "featurize", "--model", "wav2vec2", "--params", ckpts["wav2vec2"],
             "--in-wav", golden_wav("spk1-utt1"), "--out-npy", tmp_path / "y.npy")
    assert np.load(tmp_path / "y.npy").shape == (159, 24)
    proc = run_tool(FEATURIZE, "--model", "hubert", "--output", "z", "--params", ckpts["hubert"],
                    data, tmp_path / "bad", check=False)
    assert proc.returncode == 1 and "model hubert does not take --output" in proc.stderr


def test_feature_skip_connections_run_one_by_one(tmp_path):
    """fairseq subsamples encoder skip connections by the padded length ratio, which batching
    would change: such models run utterance by utterance, and still equal one-by-one."""
    m = create("wav2vec", params=str(wav2vec_checkpoint(tmp_path / "s.pt", skip_connections_feat=True)))
    assert m.one_by_one
    xs = waves((9000, 16000, 4000))
    batched = m.featurize(Batch(["a", "b", "c"], xs, [len(x) for x in xs]))
    for x, out in zip(xs, batched):
        assert np.array_equal(out, m.featurize(Batch(["x"], [x], [len(x)]))[0])
