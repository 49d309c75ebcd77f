"""fbank / MFCC / CMVN against the outputs of the real Kaldi binaries (tests/data/kaldi_golden),
for the numpy (the CPU default, its per-frame work compiled), numpy-plain (the same without the
compiled kernels, as where they were not built), native (kaldi-native-fbank) and torch backends,
which must meet the same tolerances."""

import numpy as np
import pytest

from conftest import GOLDEN_UTTS, SPEECH_UTTS, golden_ark, golden_wave, kaldi_binary
from speech_reps.frontend import CmvnStats, FeatureOptions, FrontEnd, FrontEndSpec

FBANK_CASES = {
    "fbank80.ark": {"num-mel-bins": 80},
    "fbank40.ark": {"num-mel-bins": 40},
    "fbank80_energy.ark": {"num-mel-bins": 80, "use-energy": True},
    "fbank80_nosnip.ark": {"num-mel-bins": 80, "snip-edges": False},
}


def front_end(options, backend):
    """FrontEnd of ``backend``; "numpy-plain": numpy's without the compiled per-frame kernels."""
    front = FrontEnd(FrontEndSpec(options, backend="numpy" if backend == "numpy-plain" else backend))
    if backend == "numpy-plain":
        front.backend.compiled = None
    return front


def compute(kind, overrides, utt, backend="native"):
    options = FeatureOptions.from_file(kind, None, {"dither": 0, **overrides})
    return front_end(options, backend).features(utt, golden_wave(utt)), options


def test_the_compiled_frame_kernels_are_built():
    from speech_reps.frontend import numpy_backend

    assert numpy_backend._fbank_kernels is not None, (
        "speech_reps.frontend._fbank_kernels was not built: `pip install -e .` needs a C compiler "
        "and Python's headers (make sysdeps installs gcc)")
    assert numpy_backend.NumpyBackend(FeatureOptions("fbank")).compiled is not None


def assert_fbank_close(ours, kaldi, utt):
    """Bins within 10 nats of their frame's peak: <= 1e-3; bins far below are float noise."""
    assert ours.shape == kaldi.shape, utt
    diff = np.abs(ours - kaldi)
    near_peak = kaldi >= kaldi.max(axis=1, keepdims=True) - 10.0
    assert diff[near_peak].max() <= 1e-3, (utt, diff[near_peak].max())
    assert diff.mean() <= 1e-2, (utt, diff.mean())


CPU_BACKENDS = ["numpy", "numpy-plain", "native", "torch"]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("ark", sorted(FBANK_CASES))
def test_fbank_matches_kaldi(ark, backend):
    golden = golden_ark(ark)
    assert sorted(golden) == GOLDEN_UTTS
    for utt, kaldi in golden.items():
        ours, options = compute("fbank", FBANK_CASES[ark], utt, backend)
        assert ours.shape[0] == options.num_frames(len(golden_wave(utt)))
        assert_fbank_close(ours, kaldi, utt)


def test_fbank_frame_counts_are_kaldis():
    # 51278 samples: 1 + (51278 - 400) // 160 = 318 with snip-edges, (51278 + 80) // 160 = 320 without.
    assert golden_ark("fbank80.ark")["spk1-utt1"].shape == (318, 80)
    assert golden_ark("fbank80_nosnip.ark")["spk1-utt1"].shape == (320, 80)
    options = FeatureOptions("fbank")
    assert options.num_frames(51278) == 318 and options.num_frames(399) == 0


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_mfcc_matches_kaldi(backend):
    """MFCC c_i are the liftered DCT of the log-mel bins: lifter(22) multiplies c_i by up to 12,
    and on the chirp, bins far below the peak (float noise in both programs) reach every c_i.
    So cepstra are compared unliftered: speech within 1e-3, every utterance's mean within 1e-2."""
    golden = golden_ark("mfcc.ark")
    lifter = 1.0 + 11.0 * np.sin(np.pi * np.arange(13) / 22.0)
    for utt, kaldi in golden.items():
        ours, _ = compute("mfcc", {}, utt, backend)
        assert ours.shape == kaldi.shape == (kaldi.shape[0], 13)
        diff = np.abs(ours - kaldi) / lifter
        assert diff.mean() <= 1e-2, utt
        if utt in SPEECH_UTTS:
            assert diff.max() <= 1e-3, (utt, diff.max())
            assert np.abs(ours - kaldi).max() <= 5e-3


def test_utterance_cmvn_matches_apply_cmvn():
    golden = golden_ark("fbank80_uttcmvn.ark")
    for utt in SPEECH_UTTS:
        feats, _ = compute("fbank", {"num-mel-bins": 80}, utt)
        normed = CmvnStats.of(feats).apply(feats, norm_vars=True, key=utt)
        assert normed.shape == golden[utt].shape
        assert np.abs(normed - golden[utt]).max() <= 2e-3
        assert np.allclose(normed.mean(axis=0), 0, atol=1e-4)


def test_torch_batch_with_cmvn_matches_apply_cmvn_and_single_utterances():
    """One padded batch of all four utterances (318 down to 0 frames): each equals its own
    one-by-one computation, and the batched CMVN equals Kaldi's apply-cmvn."""
    options = FeatureOptions.from_file("fbank", None, {"dither": 0, "num-mel-bins": 80})
    frontend = FrontEnd(FrontEndSpec(options, backend="torch", cmvn="utt", norm_vars=True))
    waves = [golden_wave(u) for u in GOLDEN_UTTS]
    batched = frontend.features_batch(GOLDEN_UTTS, waves)
    golden = golden_ark("fbank80_uttcmvn.ark")
    for utt, wave, feats in zip(GOLDEN_UTTS, waves, batched):
        assert feats.shape == (options.num_frames(len(wave)), 80)
        alone = frontend.features_batch([utt], [wave])[0]
        assert np.abs(feats - alone).max() <= 1e-5, utt
        if utt in SPEECH_UTTS:
            assert np.abs(feats - golden[utt]).max() <= 2e-3, utt


@pytest.mark.parametrize("overrides", [
    {"window-type": "hamming", "preemphasis-coefficient": 0.0, "remove-dc-offset": False, "subtract-mean": True},
    {"window-type": "blackman", "round-to-power-of-two": False, "use-power": False},
    {"window-type": "hanning", "use-energy": True, "raw-energy": False, "energy-floor": 1.0, "htk-compat": True},
    {"window-type": "sine", "use-log-fbank": False, "low-freq": 64, "high-freq": -400},
    {"window-type": "rectangular", "snip-edges": False, "frame-length": 20, "frame-shift": 8},
])
@pytest.mark.parametrize("backend", ["numpy", "numpy-plain", "torch"])
def test_vectorised_backends_equal_native_on_other_options(overrides, backend):
    """Options the golden files do not cover, against kaldi-native-fbank (Kaldi's algorithms)."""
    for kind in ("fbank", "mfcc"):
        opts = {k: v for k, v in overrides.items() if kind == "fbank" or k not in ("use-power", "use-log-fbank")}
        for utt in SPEECH_UTTS:
            native, _ = compute(kind, opts, utt, "native")
            ours, _ = compute(kind, opts, utt, backend)
            assert ours.shape == native.shape
            scale = np.maximum(np.abs(native), 1.0)
            assert (np.abs(ours - native) / scale).max() <= 1e-3, (kind, utt)


@pytest.mark.skipif(not kaldi_binary("compute-fbank-feats"), reason="Kaldi binaries not on PATH")
@pytest.mark.parametrize("kind,overrides,ark", [
    ("fbank", {"num-mel-bins": 80, "snip-edges": False}, "fbank80_nosnip.ark"),
    ("mfcc", {}, "mfcc.ark"),
])
def test_kaldi_backend_reproduces_golden(kind, overrides, ark, monkeypatch):
    import os

    monkeypatch.setenv("PATH", f"{os.path.dirname(kaldi_binary('compute-fbank-feats'))}:{os.environ['PATH']}")
    for utt, kaldi in golden_ark(ark).items():
        ours, _ = compute(kind, overrides, utt, backend="kaldi")
        assert ours.shape == kaldi.shape
        assert np.abs(ours - kaldi).max() <= 1e-4


def test_torch_backend_long_utterance_in_frame_blocks():
    """Over 4096 frames the torch backend computes in blocks of frames: same frames as native."""
    from speech_reps.frontend import torch_backend

    wave = np.concatenate([golden_wave(u) for u in SPEECH_UTTS] * 7)  # 43.7 s, 4368 frames
    options = FeatureOptions.from_file("fbank", None, {"dither": 0, "num-mel-bins": 80, "snip-edges": False})
    native = FrontEnd(FrontEndSpec(options, backend="native")).features("long", wave)
    ours = FrontEnd(FrontEndSpec(options, backend="torch")).features("long", wave)
    assert ours.shape == native.shape and native.shape[0] > torch_backend.BLOCK_FRAMES
    near_peak = native >= native.max(axis=1, keepdims=True) - 10.0
    assert np.abs(ours - native)[near_peak].max() <= 1e-3


@pytest.mark.parametrize("backend", ["numpy", "numpy-plain", "torch"])
@pytest.mark.parametrize("num_samples", [81, 100, 250, 401])
def test_vectorised_backends_reflect_tiny_utterances_like_kaldi(num_samples, backend):
    """Without snip-edges, utterances shorter than the window reflect more than once."""
    wave = golden_wave("spk1-utt1")[8000:8000 + num_samples]
    options = FeatureOptions.from_file("fbank", None, {"dither": 0, "num-mel-bins": 23, "snip-edges": False})
    native = FrontEnd(FrontEndSpec(options, backend="native")).features("tiny", wave)
    ours = front_end(options, backend).features("tiny", wave)
    assert ours.shape == native.shape == (options.num_frames(num_samples), 23)
    assert np.abs(ours - native).max() <= 1e-3 * max(1.0, np.abs(native).max())


def test_numpy_backend_long_utterance_in_blocks():
    """A long utterance runs in blocks of frames on threads (and the DC/pre-emphasis/window
    passes of the dither-0 path): the same frames as in one thread, and Kaldi's within the
    golden criterion, fbank and MFCC."""
    from speech_reps.frontend import numpy_backend

    wave = np.concatenate([golden_wave(u) for u in SPEECH_UTTS] * 2)  # 1230 frames: several blocks
    for kind in ("fbank", "mfcc"):
        options = FeatureOptions.from_file(kind, None, {"dither": 0, "snip-edges": False})
        ours = numpy_backend.NumpyBackend(options).compute("long", wave)
        assert ours.shape[0] > 4 * numpy_backend.BLOCK_FRAMES
        assert np.array_equal(ours, numpy_backend.NumpyBackend(options, threads=False).compute("long", wave))
        native = FrontEnd(FrontEndSpec(options, backend="native")).features("long", wave)
        assert ours.shape == native.shape
        near_peak = native >= native.max(axis=1, keepdims=True) - 10.0 if kind == "fbank" else np.ones_like(native, bool)
        assert np.abs(ours - native)[near_peak].max() <= (1e-3 if kind == "fbank" else 5e-3), kind


def test_cpu_default_backend_is_numpy():
    from speech_reps.frontend import choose_backend

    assert choose_backend(None, "cpu") == "numpy" and choose_backend(None, "cuda:0") == "torch"
    assert choose_backend("native", "cpu") == "native"


@pytest.mark.parametrize("overrides", [
    {"dither": 1.0},
    {"dither": 0.5, "use-energy": True, "remove-dc-offset": False},
    {"dither": 1.0, "use-energy": True, "raw-energy": False, "preemphasis-coefficient": 0.0},
])
def test_compiled_frames_equal_numpys_with_the_same_dither_noise(overrides):
    """The compiled kernels draw no noise of their own: given the generator's same draws (one
    thread, blocks in order), they compute numpy's features; the last frame block is partial
    (fewer frames than the kernel's 16 lanes)."""
    from speech_reps.frontend import numpy_backend

    wave = np.concatenate([golden_wave(u) for u in SPEECH_UTTS])
    for kind in ("fbank", "mfcc"):
        options = FeatureOptions.from_file(kind, None, overrides)
        compiled, plain = (numpy_backend.NumpyBackend(options, threads=False) for _ in range(2))
        plain.compiled = None
        compiled.rng, plain.rng = np.random.default_rng(3), np.random.default_rng(3)
        ours, theirs = compiled.compute("u", wave), plain.compute("u", wave)
        assert ours.shape == theirs.shape and ours.shape[0] % 16 != 0
        near_peak = theirs >= theirs.max(axis=1, keepdims=True) - 10.0 if kind == "fbank" else np.ones_like(ours, bool)
        assert np.abs(ours - theirs)[near_peak].max() <= 1e-3, kind


def test_the_frame_kernel_refuses_banks_and_sizes_beyond_its_buffers():
    """A wrong call is a ValueError, never a read past a buffer: a bank whose start plus length
    overflows int32, a frame count beyond int32."""
    from speech_reps.frontend import _fbank_kernels as kernels

    zeros = lambda n: np.zeros(n, np.float32)  # noqa: E731
    bitrev = np.array([0, 2, 1, 3], np.int32)
    for start, count in (([2**31 - 1], 1), ([0], 2**40)):
        with pytest.raises(ValueError):
            kernels.mel_spectra(zeros(8), zeros(0), zeros(8), bitrev, zeros(4), zeros(8),
                                np.array(start, np.int32), np.array([1], np.int32), zeros(1),
                                zeros(1), zeros(0), count, 8, 1, 8, 0, 4, 1, 1, 0, 0.97, 0.0)


def test_torch_batch_of_int16_waves_equals_float_waves():
    """The loader workers send 16-bit audio as int16 to the batched GPU front end
    (engine/inputs.py): int16 waves, alone or mixed with float32 ones in a batch, give exactly
    the features of the same samples in float32."""
    options = FeatureOptions.from_file("fbank", None, {"dither": 0, "num-mel-bins": 80, "snip-edges": False})
    frontend = FrontEnd(FrontEndSpec(options, backend="torch", cmvn="utt", norm_vars=True))
    waves = [golden_wave(u) for u in GOLDEN_UTTS]
    small = [w.astype(np.int16) for w in waves]
    assert all(np.array_equal(s, w) for s, w in zip(small, waves))
    want = frontend.features_batch(GOLDEN_UTTS, waves)
    for inputs in (small, [small[0], waves[1], small[2], waves[3]]):
        got = frontend.features_batch(GOLDEN_UTTS, inputs)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert np.array_equal(frontend.features(GOLDEN_UTTS[0], small[0]), frontend.features(GOLDEN_UTTS[0], waves[0]))


def test_reflection_in_one_step_is_kaldis_repeated_reflection():
    """The torch front end gathers every frame's samples at once: reflect_into gives, for any
    position and wave length, the sample Kaldi's ExtractWindow loop ends on."""
    import torch

    from speech_reps.frontend.torch_backend import reflect_into

    def kaldi(s, n):
        while s < 0 or s >= n:
            s = -s - 1 if s < 0 else 2 * n - 1 - s
        return s

    for n in (1, 2, 3, 7, 400):
        positions = torch.arange(-5 * n - 3, 6 * n + 4)
        got = reflect_into(positions[None, :], torch.tensor([[n]]))[0].tolist()
        assert got == [kaldi(s, n) for s in positions.tolist()], n
    # an utterance of 2^30 samples or more (18.6 h at 16 kHz) overflows int32 in its period 2n
    from speech_reps.frontend.torch_backend import index_dtype

    n = 2 ** 30 + 5
    positions = torch.tensor([-3, 0, 5, n - 1, n, n + 2])
    wide = index_dtype(2 * n)
    assert wide == torch.int64 and index_dtype(2 ** 31 - 2) == torch.int32
    got = reflect_into(positions.to(wide)[None, :], torch.tensor([[n]], dtype=wide))[0].tolist()
    assert got == [kaldi(s, n) for s in positions.tolist()]


def test_torch_batch_takes_empty_waves_and_plain_lists():
    """An empty wave in a batch gives its (0, D) matrix and leaves the others as they are alone;
    a plain list of samples is a wave too (the front end's public API)."""
    options = FeatureOptions.from_file("fbank", None, {"dither": 0, "num-mel-bins": 40, "snip-edges": False})
    frontend = FrontEnd(FrontEndSpec(options, backend="torch"))
    wave = golden_wave(GOLDEN_UTTS[0])
    alone = frontend.backend.compute_batch([wave])[0]
    for batch in ([np.zeros(0, np.float32), wave], [wave, np.zeros(0, np.int16)]):
        feats = frontend.backend.compute_batch(batch)
        assert [f.shape[0] for f in feats] == [0, len(alone)] if len(batch[0]) == 0 else [len(alone), 0]
        assert np.array_equal(feats[1] if len(batch[0]) == 0 else feats[0], alone)
    assert np.array_equal(frontend.backend.compute_batch([wave[:5000].tolist()])[0],
                          frontend.backend.compute_batch([wave[:5000]])[0])
