"""BERTphone's PyTorch port against GluonNLP/MXNet, the original framework, at full size.

GluonNLP 0.8.3 (the version whose BaseTransformerEncoder the original code imports) and MXNet
live in their own venv (tests/parity/gluonnlp_venv.sh, cached in .cache/parity/); it builds
bert_12_768_12 behind the Dense input layer with seeded random weights, saves the .params the
way the original featurizer loads them, and writes reference outputs. The encoder tests feed both
sides our CMVN'd MFCC; the end-to-end test feeds GluonNLP real Kaldi's MFCC (the golden mfcc.ark),
CMVN'd and stacked in the reference venv, so our front end is checked too. If the venv cannot be
built the test fails (it does not skip): parity is a deliverable, not an option.
"""

import subprocess

import numpy as np
import pytest
import soundfile as sf
import soxr

from conftest import parity_python, GOLDEN_UTTS, REPO, SPEECH_UTTS, golden_ark, golden_wav, golden_wave, write_conf
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


MFCC_BOUND, ENCODER_GAIN = 5e-3, 30  # see test_end_to_end_from_wav_equals_gluonnlp_on_kaldi_mfcc
# Kaldi's default MFCC options (those of the golden mfcc.ark: 16 kHz, 13 ceps from 23 bins, c0 the
# log energy), set over conf/bertphone.yaml's, as a user's --feature-config would.
KALDI_DEFAULT_MFCC = ["--sample-frequency=16000", "--num-ceps=13", "--num-mel-bins=23", "--low-freq=20",
                      "--high-freq=0", "--use-energy=true", "--dither=0"]


@pytest.fixture(scope="module")
def kaldi_mfcc_reference(tmp_path_factory):
    """GluonNLP's BERTphone (39-dim input) on real Kaldi's MFCC of the two speech wavs, with the
    original featurizer's CMVN and stacking done in the reference venv."""
    out = tmp_path_factory.mktemp("gluonnlp_kaldi")
    kaldi = golden_ark("mfcc.ark")
    np.savez(out / "mfcc.npz", **{utt: kaldi[utt] for utt in SPEECH_UTTS})
    proc = subprocess.run([gluonnlp_python(), str(REPO / "tests" / "parity" / "bertphone_gluonnlp_reference.py"),
                           "--inputs", str(out / "mfcc.npz"), "--kaldi-mfcc", "--out-dir", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, write_conf(out / "mfcc.conf", *KALDI_DEFAULT_MFCC), dict(np.load(out / "outputs.npz"))


@pytest.mark.slow
def test_end_to_end_from_wav_equals_gluonnlp_on_kaldi_mfcc(kaldi_mfcc_reference):
    """Our whole path (wav -> our MFCC -> CMVN -> stacking -> encoder) against GluonNLP on real
    Kaldi's compute-mfcc-feats output, CMVN'd and stacked as the original featurizer does.

    Bounds, from the MFCC bound. On speech our MFCC is within MFCC_BOUND = 5e-3 of Kaldi's
    (test_frontend_golden; the README's 1e-3 is before the lifter, which scales c_i by up to 12).
    Utterance CMVN maps an error d in a column of std sigma to (d - mean(d)) / sigma, at most
    2 |d| / sigma (the change of sigma itself is second order): the stacked inputs may differ by
    2 * MFCC_BOUND / (the smallest column std of Kaldi's MFCC) = 1.7e-3 (spk1-utt1), 1.7e-3
    (spk2-utt1); measured 2.8e-5, 1.1e-4. The encoder (these weights) moves its output by at most
    ENCODER_GAIN = 30 times a change of its input (max-abs over max-abs; measured 17-24 with
    random +-1e-4 and +-1e-3 changes): outputs (up to 10.7) may differ by 30 times the input
    bound, 5e-2; measured 5.0e-5, 1.5e-4. A front-end slip (frames stacked in another order, CMVN
    without variances, c0 not the energy) moves the inputs by O(1)."""
    from speech_reps.featurize import BertPhoneFeaturizer

    out, conf, reference = kaldi_mfcc_reference
    options = FeatureOptions.from_file("mfcc", conf, defaults=load_config(BERTphoneConfig, name="bertphone").frontend_args)
    frontend = FrontEnd(FrontEndSpec(options))
    featurizer = BertPhoneFeaturizer(str(out / "legacy.params"), feature_config=str(conf))
    assert featurizer.model.input_dim == 39 and featurizer.model.sample_rate == 16000
    kaldi = golden_ark("mfcc.ark")
    for utt in SPEECH_UTTS:
        feats = frontend.features(utt, golden_wave(utt))
        stacked = stack_frames(CmvnStats.of(feats).apply(feats, norm_vars=True))
        ref_in = reference[f"input/{utt}"]
        assert stacked.shape == ref_in.shape == (-(-len(kaldi[utt]) // 3), 39)
        front_bound = 2 * MFCC_BOUND / kaldi[utt].std(axis=0).min()
        assert np.abs(stacked - ref_in).max() <= front_bound, (utt, np.abs(stacked - ref_in).max(), front_bound)
        ours = featurizer.file_to_feats(str(golden_wav(utt)))
        assert ours.shape == reference[utt].shape == (len(ref_in), 768)
        out_bound = ENCODER_GAIN * front_bound
        assert np.abs(ours - reference[utt]).max() <= out_bound, (utt, np.abs(ours - reference[utt]).max(), out_bound)
