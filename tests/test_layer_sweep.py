"""--layer 4,8,12: several layers from one forward pass, each output bit for bit a --layer N run's."""

import kaldiio
import numpy as np
import pytest

from bertphone_files import random_weights, write_bertphone
from conftest import REPO, golden_data_dir, run_tool
from decoar2_files import random_state, write_checkpoint
from fairseq_files import wav2vec2_checkpoint
from speech_reps.cli_args import layer_list
from speech_reps.errors import ConfigError
from speech_reps.layer_sweep import LayerSplitWriter
from speech_reps.models.base import Batch
from speech_reps.models.registry import create
from speech_reps.engine.job import Job
from speech_reps.engine.run import featurize_data_dir

LAYERS = (2, 0, 1)  # any order; 0 is the transformer's input


@pytest.fixture(scope="module")
def w2v2(tmp_path_factory):
    return wav2vec2_checkpoint(tmp_path_factory.mktemp("w2v2") / "w.pt")


def same_output(sweep_dir, single_dir):
    """Every file of a --layer N run, and in a sweep's layer dir the same bytes (scp and data
    dir feats.scp: the same offsets, in their own archive)."""
    def files(root):  # the outputs; not the run's lock file (.feats.lock)
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock"))

    names = files(single_dir)
    assert names == files(sweep_dir)
    for name in names:
        a, b = (sweep_dir / name).read_bytes(), (single_dir / name).read_bytes()
        if name.name.endswith(".scp"):
            a, b = a.replace(str(sweep_dir).encode(), b"X"), b.replace(str(single_dir).encode(), b"X")
        assert a == b, name


@pytest.mark.parametrize("model,make,inputs", [
    ("decoar2", lambda d: write_checkpoint(d / "c.pt", random_state()), (80, [41, 7, 120])),
    ("bertphone", lambda d: write_bertphone(d / "b.params", random_weights()), (40, [90, 4, 31])),
])
def test_models_give_each_layer_bit_for_bit(tmp_path, model, make, inputs):
    params = make(tmp_path)
    dim, lengths = inputs
    rng = np.random.default_rng(0)
    batch = Batch(["a", "b", "c"], [rng.standard_normal((n, dim)).astype(np.float32) for n in lengths], [0, 0, 0])
    swept = create(model, params=str(params), layer=LAYERS)
    out = swept.featurize(batch)
    for i, layer in enumerate(LAYERS):
        alone = create(model, params=str(params), layer=layer)
        assert swept.dim == len(LAYERS) * alone.dim
        for got, want in zip(out, alone.featurize(batch)):
            assert got.shape == (len(want), swept.dim) and got.dtype == np.float32
            assert np.array_equal(got[:, i * alone.dim:(i + 1) * alone.dim], want), (model, layer)


def test_sweep_outputs_equal_single_layer_runs(tmp_path, w2v2):
    data = golden_data_dir(tmp_path / "data")
    featurize_data_dir(Job(data, tmp_path / "sweep", model="wav2vec2", model_options={"params": w2v2, "layer": LAYERS},
                       progress=False))
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == [".feats.lock", "layer0", "layer1", "layer2"]
    for layer in LAYERS:
        featurize_data_dir(Job(data, tmp_path / f"single{layer}", model="wav2vec2",
                           model_options={"params": w2v2, "layer": layer}, progress=False))
        same_output(tmp_path / "sweep" / f"layer{layer}", tmp_path / f"single{layer}")
    assert "layer: 1\n" in (tmp_path / "sweep" / "layer1" / "conf" / "featurize.yaml").read_text()


def test_sweep_pooled_equals_single_pooled(tmp_path, w2v2):
    data = golden_data_dir(tmp_path / "data")
    featurize_data_dir(Job(data, tmp_path / "sweep", model="wav2vec2", model_options={"params": w2v2, "layer": (1, 2)},
                       progress=False, pool="mean"))
    for layer in (1, 2):
        featurize_data_dir(Job(data, tmp_path / f"single{layer}", model="wav2vec2",
                           model_options={"params": w2v2, "layer": layer}, progress=False, pool="mean"))
        same_output(tmp_path / "sweep" / f"layer{layer}", tmp_path / f"single{layer}")


def test_resume_when_one_layer_is_a_batch_ahead(tmp_path, w2v2, monkeypatch):
    """Killed after layer 2's writer checkpointed a batch but before layer 1's did: the rerun
    redoes that batch for layer 1 only, and both outputs equal an uninterrupted run's."""
    data = golden_data_dir(tmp_path / "data")
    options = {"params": w2v2, "layer": (2, 1)}
    kw = dict(model="wav2vec2", model_options=options, progress=False, batch_frames=160)  # one utterance a batch
    featurize_data_dir(Job(data, tmp_path / "whole", **kw))

    calls = {"n": 0}
    real = LayerSplitWriter.checkpoint

    def dies_on_the_third_batch(self):
        calls["n"] += 1
        if calls["n"] == 3:
            self.writers[0].checkpoint()
            raise KeyboardInterrupt  # as a kill between the two journals
        real(self)

    monkeypatch.setattr("speech_reps.engine.run.CHECKPOINT_SECONDS", 0.0)  # a checkpoint every batch
    monkeypatch.setattr(LayerSplitWriter, "checkpoint", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        featurize_data_dir(Job(data, tmp_path / "resumed", **kw))
    monkeypatch.setattr(LayerSplitWriter, "checkpoint", real)
    ahead = (tmp_path / "resumed" / "layer2" / "feats.ark.journal").read_text().count("\nB ")
    behind = (tmp_path / "resumed" / "layer1" / "feats.ark.journal").read_text().count("\nB ")
    assert ahead == behind + 1
    summary = featurize_data_dir(Job(data, tmp_path / "resumed", **kw))
    assert (summary.done, summary.failed) == (4, 0)
    for layer in (2, 1):
        same_output(tmp_path / "resumed" / f"layer{layer}", tmp_path / "whole" / f"layer{layer}")


def test_layer_option(tmp_path):
    assert layer_list("4") == 4 and layer_list("4,8,12") == (4, 8, 12)
    with pytest.raises(Exception, match="expected a layer number"):
        layer_list("4,x")
    proc = run_tool(REPO / "steps" / "featurize.py", "--model", "fbank", "--layer", "1,2",
                    golden_data_dir(tmp_path / "d"), tmp_path / "out", check=False)
    assert proc.returncode == 1 and "featurize.py: model fbank does not take --layer" in proc.stderr


def test_single_file_cli_takes_one_layer(tmp_path, capsys):
    from speech_reps.cli import main

    assert main(["featurize", "--in-wav", str(REPO / "tests/data/kaldi_golden/wav/spk3-short.wav"),
                 "--out-npy", str(tmp_path / "x.npy"), "--model", "wav2vec2", "--layer", "1,2"]) == 1
    assert "one output per layer is for data dirs" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()


def test_bad_layer_lists(w2v2):
    with pytest.raises(ConfigError, match=r"wav2vec2: --layer 1,1: a layer is named twice"):
        create("wav2vec2", params=str(w2v2), layer=(1, 1))
    with pytest.raises(ConfigError, match=r"wav2vec2: --layer 3: the model has layers 0\.\.2"):
        create("wav2vec2", params=str(w2v2), layer=(1, 3))
