"""BERTphone's PyTorch port against GluonNLP/MXNet, the original framework, at full size.

GluonNLP 0.8.3 (the version whose BaseTransformerEncoder the original code imports) and MXNet
live in their own venv (tests/parity/gluonnlp_venv.sh, cached in .cache/parity/); it builds
bert_12_768_12 behind the Dense input layer with seeded random weights, saves the .params the
way the original featurizer loads them, and writes reference outputs. If the venv cannot be
built the test fails (it does not skip): parity is a deliverable, not an option.
"""

import subprocess

import numpy as np
import pytest
import soundfile as sf
import soxr

from conftest import parity_python, GOLDEN_UTTS, REPO, golden_wave
from speech_reps.frontend import CmvnStats, FeatureOptions, FrontEnd, FrontEndSpec
from speech_reps.models.base import Batch
from speech_reps.models.bertphone import BERTphoneConfig, stack_frames, windows
from speech_reps.models.config import load_config
from speech_reps.models.registry import create


LONG = 1700  # MFCC frames: 567 stacked frames, two windows


def gluonnlp_python():
    return parity_python("gluonnlp_venv.sh", "GluonNLP (numpy==1.23.5 mxnet==1.9.1 gluonnlp==0.8.3)")


@pytest.fixture(scope="module")
def gluonnlp_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("gluonnlp")
    options = FeatureOptions.from_file("mfcc", None, defaults=load_config(BERTphoneConfig, name="bertphone").frontend_args)
    frontend = FrontEnd(FrontEndSpec(options))
    mfcc, stacked = {}, {}
    for utt in GOLDEN_UTTS:  # 8 kHz int16 wavs, as a user would have them
        x = soxr.resample(golden_wave(utt), 16000, 8000, quality="HQ")
        sf.write(out / f"{utt}.wav", np.clip(np.round(x), -32768, 32767).astype(np.int16), 8000, subtype="PCM_16")
        wave = sf.read(out / f"{utt}.wav", dtype="int16")[0].astype(np.float32)
        feats = frontend.features(utt, wave)
        mfcc[utt] = CmvnStats.of(feats).apply(feats, norm_vars=True)
        stacked[utt] = stack_frames(mfcc[utt])
    # a 17 s utterance (over the 512 learned positions): GluonNLP runs its windows, cut by our rule
    long_mfcc = np.concatenate([mfcc[u] for u in GOLDEN_UTTS] * 3)[:LONG]
    mfcc["long"] = long_mfcc
    for start, end, _, _ in windows(len(stack_frames(long_mfcc)), 512, 256):
        stacked[f"long@{start}"] = stack_frames(long_mfcc)[start:end]
    np.savez(out / "inputs.npz", **stacked)
    proc = subprocess.run([gluonnlp_python(), str(REPO / "tests" / "parity" / "bertphone_gluonnlp_reference.py"),
                           "--inputs", str(out / "inputs.npz"), "--out-dir", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, mfcc, dict(np.load(out / "outputs.npz"))


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["legacy", "structural"])
def test_port_equals_gluonnlp(gluonnlp_reference, layout):
    out, mfcc, reference = gluonnlp_reference
    model = create("bertphone", params=str(out / f"{layout}.params"))
    assert (model.input_dim, model.dim, model.hidden, model.layers, model.max_length) == (120, 768, 3072, 12, 512)
    keys = list(GOLDEN_UTTS)
    outputs = model.featurize(Batch(keys, [mfcc[k] for k in keys], [0] * len(keys)))  # one batch
    for key, ours in zip(keys, outputs):
        assert ours.shape == reference[key].shape == (-(-len(mfcc[key]) // 3), 768)
        assert np.abs(ours - reference[key]).max() <= 1e-4, (key, np.abs(ours - reference[key]).max())
        # GluonNLP's own batch (valid_length masks) gives the same frames
        assert np.abs(ours - reference[f"batched/{key}"]).max() <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("layer", [1, 6])
def test_layers_equal_gluonnlp(gluonnlp_reference, layer):
    out, mfcc, reference = gluonnlp_reference
    model = create("bertphone", params=str(out / "legacy.params"), layer=layer)
    outputs = model.featurize(Batch(GOLDEN_UTTS, [mfcc[k] for k in GOLDEN_UTTS], [0] * len(GOLDEN_UTTS)))
    for key, ours in zip(GOLDEN_UTTS, outputs):
        assert np.abs(ours - reference[f"layer{layer}/{key}"]).max() <= 1e-4


@pytest.mark.slow
def test_long_utterance_equals_gluonnlp_on_its_windows(gluonnlp_reference):
    """567 stacked frames: frames [0, 283) from GluonNLP on frames [0, 512), the rest from
    GluonNLP on [55, 567) (the rule's cut in the middle of the overlap), in a batch with others."""
    out, mfcc, reference = gluonnlp_reference
    model = create("bertphone", params=str(out / "legacy.params"))
    ours = model.featurize(Batch(["long", "spk3-short"], [mfcc["long"], mfcc["spk3-short"]], [0, 0]))[0]
    assert windows(567, 512, 256) == [(0, 512, 0, 283), (55, 567, 283, 567)] and ours.shape == (567, 768)
    assert np.abs(ours[:283] - reference["long@0"][:283]).max() <= 1e-4
    assert np.abs(ours[283:] - reference["long@55"][283 - 55:]).max() <= 1e-4


@pytest.mark.slow
def test_full_size_end_to_end_from_8khz_wav(gluonnlp_reference):
    """wav (8 kHz) -> Kaldi MFCC -> CMVN -> 3-frame stacking -> encoder, against GluonNLP."""
    from speech_reps.featurize import BertPhoneFeaturizer

    out, _, reference = gluonnlp_reference
    feats = BertPhoneFeaturizer(str(out / "legacy.params")).file_to_feats(str(out / "spk1-utt1.wav"))
    assert feats.shape == (106, 768)
    assert np.abs(feats - reference["spk1-utt1"]).max() <= 1e-4
