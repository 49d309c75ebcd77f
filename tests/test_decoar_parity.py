"""DeCoAR's PyTorch port against MXNet Gluon, the original framework, at full size.

MXNet lives in its own venv (tests/parity/mxnet_venv.sh, cached in .cache/parity/); it writes
.params files and reference outputs, and this suite loads both with the port. If MXNet cannot
be installed the test fails (it does not skip): parity is a deliverable, not an option.
"""

import subprocess

import numpy as np
import pytest

from conftest import parity_python, GOLDEN_UTTS, REPO, golden_wave
from decoar_files import write_torch_checkpoint
from speech_reps.frontend import CmvnStats, FeatureOptions, FrontEnd, FrontEndSpec
from speech_reps.models.base import Batch
from speech_reps.models.decoar_checkpoint import load_decoar_weights
from speech_reps.models.registry import create

HIDDEN, LAYERS = 1024, 4  # the published model's sizes


def mxnet_python():
    return parity_python("mxnet_venv.sh", "MXNet (pip install numpy==1.23.5 mxnet==1.9.1)")


def cmvn_fbank40(utt):
    options = FeatureOptions.from_file("fbank", None, {"num-mel-bins": 40, "dither": 0})
    feats = FrontEnd(FrontEndSpec(options)).features(utt, golden_wave(utt))
    return CmvnStats.of(feats).apply(feats, norm_vars=True)


@pytest.fixture(scope="module")
def mxnet_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("mxnet")
    inputs = {utt: cmvn_fbank40(utt) for utt in GOLDEN_UTTS}
    np.savez(out / "inputs.npz", **inputs)
    proc = subprocess.run([mxnet_python(), str(REPO / "tests" / "parity" / "decoar_mxnet_reference.py"),
                           "--inputs", str(out / "inputs.npz"), "--out-dir", str(out),
                           "--hidden", str(HIDDEN), "--layers", str(LAYERS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, inputs, dict(np.load(out / "outputs.npz"))


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["structural", "legacy"])
def test_port_equals_mxnet(mxnet_reference, layout):
    out, inputs, reference = mxnet_reference
    model = create("decoar", params=str(out / f"{layout}.params"))
    assert (model.input_dim, model.hidden, model.layers, model.dim) == (40, HIDDEN, LAYERS, 2048)
    assert sum(v.size for v in load_decoar_weights(out / f"{layout}.params")[0].values()) > 67e6
    keys = list(inputs)
    outputs = model.featurize(Batch(keys, [inputs[k] for k in keys], [0] * len(keys)))  # one batch
    for key, ours in zip(keys, outputs):
        assert ours.shape == reference[key].shape == (inputs[key].shape[0], 2048)
        assert np.abs(ours - reference[key]).max() <= 1e-4, (key, np.abs(ours - reference[key]).max())


@pytest.mark.slow
def test_pytorch_checkpoint_of_the_same_weights_gives_the_same_output(mxnet_reference, tmp_path):
    out, inputs, reference = mxnet_reference
    weights, _, _ = load_decoar_weights(out / "legacy.params")
    pt = write_torch_checkpoint(tmp_path / "checkpoint_decoar.pt", weights)
    model = create("decoar", params=str(pt))
    key = "spk2-utt1"
    ours = model.featurize(Batch([key], [inputs[key]], [0]))[0]
    assert np.abs(ours - reference[key]).max() <= 1e-4


@pytest.mark.slow
def test_full_size_end_to_end_from_wav(mxnet_reference, tmp_path):
    """The whole seed path: wav -> Kaldi fbank40 -> CMVN -> encoder, against MXNet."""
    from speech_reps.featurize import DeCoARFeaturizer

    out, _, reference = mxnet_reference
    feats = DeCoARFeaturizer(str(out / "structural.params")).file_to_feats(
        str(REPO / "tests" / "data" / "kaldi_golden" / "wav" / "spk1-utt1.wav"))
    assert feats.shape == (318, 2048)
    assert np.abs(feats - reference["spk1-utt1"]).max() <= 1e-4
