"""The torch front end on a CUDA GPU meets the golden Kaldi tolerances the CPU backends meet
(fbank, MFCC, utterance CMVN), batched, also when a model placed before it turned TF32 on."""

import numpy as np
import pytest

from conftest import GOLDEN_UTTS, SPEECH_UTTS, golden_ark, golden_wave
from speech_reps.frontend import FeatureOptions, FrontEnd, FrontEndSpec
from speech_reps.models.torch_device import exact_float32, set_tf32, tf32_flags
from test_frontend_golden import FBANK_CASES, assert_fbank_close

pytestmark = pytest.mark.gpu
DEVICE = "cuda:0"


@pytest.fixture(params=[False, True], ids=["tf32-off", "tf32-on"])
def tf32(request):
    """TF32 as a model placed before the front end left it (--dtype float32 or tf32)."""
    with exact_float32("cuda"):  # restores the flags afterwards
        set_tf32(request.param)
        yield request.param


def gpu_frontend(kind, overrides, **spec):
    options = FeatureOptions.from_file(kind, None, {"dither": 0, **overrides})
    return FrontEnd(FrontEndSpec(options, backend="torch", device=DEVICE, **spec)), options


@pytest.mark.parametrize("ark", sorted(FBANK_CASES))
def test_fbank_on_the_gpu_matches_kaldi(ark, tf32):
    frontend, options = gpu_frontend("fbank", FBANK_CASES[ark])
    waves = [golden_wave(u) for u in GOLDEN_UTTS]
    golden = golden_ark(ark)
    for utt, wave, ours in zip(GOLDEN_UTTS, waves, frontend.features_batch(GOLDEN_UTTS, waves)):
        assert ours.shape[0] == options.num_frames(len(wave))
        assert_fbank_close(ours, golden[utt], utt)
    assert tf32_flags()[0] == tf32  # the front end left the model's setting as it was


def test_mfcc_on_the_gpu_matches_kaldi(tf32):
    frontend, _ = gpu_frontend("mfcc", {})
    golden = golden_ark("mfcc.ark")
    lifter = 1.0 + 11.0 * np.sin(np.pi * np.arange(13) / 22.0)
    waves = [golden_wave(u) for u in GOLDEN_UTTS]
    for utt, ours in zip(GOLDEN_UTTS, frontend.features_batch(GOLDEN_UTTS, waves)):
        kaldi = golden[utt]
        assert ours.shape == kaldi.shape
        diff = np.abs(ours - kaldi) / lifter
        assert diff.mean() <= 1e-2, utt
        if utt in SPEECH_UTTS:
            assert diff.max() <= 1e-3, (utt, diff.max())
            assert np.abs(ours - kaldi).max() <= 5e-3


def test_batched_cmvn_on_the_gpu_matches_apply_cmvn_and_single_utterances(tf32):
    frontend, options = gpu_frontend("fbank", {"num-mel-bins": 80}, cmvn="utt", norm_vars=True)
    waves = [golden_wave(u) for u in GOLDEN_UTTS]
    golden = golden_ark("fbank80_uttcmvn.ark")
    for utt, wave, feats in zip(GOLDEN_UTTS, waves, frontend.features_batch(GOLDEN_UTTS, waves)):
        assert feats.shape == (options.num_frames(len(wave)), 80)
        alone = frontend.features_batch([utt], [wave])[0]
        assert np.abs(feats - alone).max() <= 1e-5, utt
        if utt in SPEECH_UTTS:
            assert np.abs(feats - golden[utt]).max() <= 2e-3, utt


def test_long_utterance_on_the_gpu_in_frame_blocks_equals_native():
    from speech_reps.frontend import torch_backend

    wave = np.concatenate([golden_wave(u) for u in SPEECH_UTTS] * 7)  # 4368 frames: two blocks
    frontend, options = gpu_frontend("fbank", {"num-mel-bins": 80, "snip-edges": False})
    native = FrontEnd(FrontEndSpec(options)).features("long", wave)
    ours = frontend.features("long", wave)
    assert ours.shape == native.shape and native.shape[0] > torch_backend.BLOCK_FRAMES
    near_peak = native >= native.max(axis=1, keepdims=True) - 10.0
    assert np.abs(ours - native)[near_peak].max() <= 1e-3
