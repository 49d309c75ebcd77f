"""GE2E (resemblyzer's pretrained speaker encoder): front end, partial windows, strict weights,
batching, pooling and the Kaldi outputs, on the real weights from the installed wheel.

resemblyzer's own numbers (tests/data/ge2e/resemblyzer_reference.npz, made by
tests/data/ge2e/make_reference.sh) are the reference here; test_ge2e_parity.py recomputes them
with resemblyzer itself.
"""

import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from conftest import GOLDEN_UTTS, REPO, golden_data_dir, golden_wav, run_tool, write_conf
from ge2e_audio import PAUSED, reference_audio
from speech_reps.errors import ConfigError
from speech_reps.models import ge2e_frontend as fe
from speech_reps.models.base import Batch
from speech_reps.models.formats import WeightsError as CheckpointError
from speech_reps.models.formats.resemblyzer import installed_weights
from speech_reps.models.ge2e_weights import load_ge2e_weights
from speech_reps.models.registry import create

FEATURIZE = REPO / "steps" / "featurize.py"
SPEECH_REPS = Path(sys.executable).parent / "speech-reps"
REFERENCE = REPO / "tests" / "data" / "ge2e" / "resemblyzer_reference.npz"


@pytest.fixture(scope="module")
def ge2e():
    return create("ge2e")


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


def prepared(model, wave01):
    """A [-1, 1] wave prepared as the pipeline prepares int16-scale audio."""
    return model.prepare_wave(wave01 * np.float32(32768.0))


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_weights_are_the_wheels_and_load_strictly():
    path = installed_weights()
    assert path.name == "pretrained.pt" and path.parent.name == "resemblyzer" and path.stat().st_size > 17_000_000
    weights, sizes = load_ge2e_weights(path)
    assert sizes == (40, 256, 3, 256)
    assert sorted(weights) == sorted(["linear.weight", "linear.bias"] + [
        f"lstm.{w}_l{k}" for k in range(3) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")])
    assert "resemblyzer" not in sys.modules  # found through its metadata, never imported


def test_missing_unexpected_and_misshaped_are_all_listed(tmp_path):
    ckpt = torch.load(installed_weights(), map_location="cpu", weights_only=True)
    state = ckpt["model_state"]
    del state["lstm.bias_hh_l2"]
    state["linear.bias"] = torch.zeros(3)
    state["decoder.weight"] = torch.zeros(2)
    torch.save({"step": 1, "model_state": state}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as e:
        load_ge2e_weights(tmp_path / "bad.pt")
    assert str(e.value) == (f"{tmp_path}/bad.pt: not a GE2E encoder: missing: lstm.bias_hh_l2; unexpected: "
                            "decoder.weight; wrong shape: linear.bias (3,) (expected (256,))")


def test_checkpoint_never_runs_pickled_code(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    torch.save({"model_state": {"x": Payload()}}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="without running pickled code"):
        load_ge2e_weights(tmp_path / "evil.pt")
    assert "pickled code ran" not in capsys.readouterr().out
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"expected resemblyzer's checkpoint, a dict with 'model_state'; found \['weights'\]"):
        load_ge2e_weights(tmp_path / "other.pt")


def test_mel_scale_is_slaneys():
    assert fe.hz_to_mel(1000.0) == pytest.approx(15.0) and fe.hz_to_mel(500.0) == pytest.approx(7.5)
    assert fe.mel_to_hz(15.0 + 27.0) == pytest.approx(6400.0)  # 27 mels per factor 6.4 above 1 kHz
    hz = np.array([0.0, 333.0, 999.0, 1000.0, 4321.0, 8000.0])
    assert np.allclose(fe.mel_to_hz(fe.hz_to_mel(hz)), hz)
    filters = fe.mel_filters()
    assert filters.shape == (40, 201) and filters.dtype == np.float32
    # Slaney normalisation: every triangle has unit area in Hz (bins are 40 Hz apart); the
    # narrowest low filters are sampled too coarsely for the sum to show it, the wide ones do
    areas = filters.sum(axis=1) * 40.0
    assert np.allclose(areas[20:], 1.0, atol=0.03)


def test_partial_counts_at_their_boundaries(ge2e):
    # resemblyzer: partial k starts at 12320·k samples; a last one needs 75% of its 25600 samples
    expected = {1: 1, 4321: 1, 25600: 1, 31519: 1, 31520: 2, 43839: 2, 43840: 3, 51278: 3, 115135: 8}
    assert {n: ge2e.num_frames(n) for n in expected} == expected
    assert ge2e.frame_shift == 0.77 and ge2e.step == 77


def test_frame_i_sees_only_its_window(ge2e):
    """Partial i reads mel frames 77i … 77i+159, i.e. samples [12320i − 200, 12320i + 25600 + 40)."""
    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(80000) * 2000).astype(np.float32)
    out = ge2e.featurize(Batch(["a"], [wave], [len(wave)]))[0]
    changed = wave.copy()
    changed[:12320 - 200] = 0  # before partial 1's first mel frame
    changed[12320 + 25640:] *= 3  # after its last one
    again = ge2e.featurize(Batch(["a"], [changed], [len(changed)]))[0]
    assert np.abs(again[1] - out[1]).max() <= 1e-6
    assert np.abs(again[0] - out[0]).max() > 1e-3 and np.abs(again[2] - out[2]).max() > 1e-3


def test_volume_is_raised_to_minus_30_dbfs_only(ge2e):
    quiet = np.full(1600, 100.0, np.float32)
    raised = ge2e.prepare_wave(quiet)
    assert 20 * np.log10(np.sqrt(np.mean((raised / 32768 * 32767) ** 2)) / 32767) == pytest.approx(-30.0, abs=1e-5)
    loud = np.full(1600, 20000.0, np.float32)
    assert np.array_equal(ge2e.prepare_wave(loud), loud)
    assert np.array_equal(ge2e.prepare_wave(np.zeros(800, np.float32)), np.zeros(800, np.float32))


def test_silence_mask_as_resemblyzer_smooths_and_dilates():
    flags = [0] * 20 + [1] * 5 + [0] * 20
    # a window is voiced when >= 5 of the 8 decisions around it (i-3 … i+4) are: windows 20..23;
    # dilation by 7 keeps 3 more on each side: 17..26
    assert np.flatnonzero(fe.speech_mask(flags)).tolist() == list(range(17, 27))
    assert not fe.speech_mask([0] * 20 + [1] * 4 + [0] * 20).any()  # 4 of 8 rounds (half to even) to 0
    wave = np.arange(45 * 480 + 100, dtype=np.float32)  # the last 100 samples are not a whole window
    assert np.array_equal(fe.trim_long_silences(wave, flags), wave[17 * 480:27 * 480])


def test_equals_resemblyzer_on_real_speech(ge2e, reference):
    for utt, wave in reference_audio().items():
        wave = prepared(ge2e, wave)
        ours = ge2e.featurize(Batch([utt], [wave], [len(wave)]))[0]
        partials = reference[f"{utt}/plain_partials"]
        assert ours.shape == partials.shape, utt
        assert np.abs(ours - partials).max() <= 1e-5, utt
        assert cosine(ge2e.pool(ours, "mean"), reference[f"{utt}/plain_embed"]) >= 0.9999, utt
    # the paused utterance: its silence changes resemblyzer's trimmed d-vector, so the two differ
    assert cosine(reference[f"{PAUSED}/plain_embed"], reference[f"{PAUSED}/pre_embed"]) < 0.9999


def test_batched_equals_one_by_one(tmp_path):
    model = create("ge2e", config=write_conf(tmp_path / "ge2e.yaml", "max_rows: 3"))  # several encoder calls
    rng = np.random.default_rng(1)
    waves = [model.prepare_wave(w * 32768) for w in reference_audio().values()]
    waves += [model.prepare_wave((rng.standard_normal(n) * 3000).astype(np.float32)) for n in (400, 30000, 70001)]
    keys = [f"u{i}" for i in range(len(waves))]
    batched = model.featurize(Batch(keys, waves, [len(w) for w in waves]))
    worst = 0.0
    for key, wave, out in zip(keys, waves, batched):
        alone = model.featurize(Batch([key], [wave], [len(wave)]))[0]
        assert out.shape == alone.shape == (model.num_frames(len(wave)), 256) and out.dtype == np.float32
        worst = max(worst, float(np.abs(out - alone).max()))
    assert worst <= 1e-5


def test_pool_mean_is_renormalised(ge2e):
    feats = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    assert np.allclose(ge2e.pool(feats, "mean"), [2 ** -0.5, 2 ** -0.5, 0])
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        ge2e.pool(feats, "max")


def test_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match=f"ge2e weights not found: {tmp_path}/none.pt"):
        create("ge2e", params=str(tmp_path / "none.pt"))
    with pytest.raises(ConfigError, match="rate 0.5: partials would be 200 frames apart"):
        create("ge2e", config=write_conf(tmp_path / "g.yaml", "rate: 0.5"))
    with pytest.raises(ConfigError, match="unknown option"):
        create("ge2e", config=write_conf(tmp_path / "t.yaml", "trim_silense: true"))
    with pytest.raises(ConfigError, match="does not take --layer"):
        create("ge2e", layer=3)


def test_trim_silence_without_webrtcvad_says_what_to_install():
    try:
        import webrtcvad  # noqa: F401
        pytest.skip("webrtcvad is installed here; the parity test covers trimming")
    except ImportError:
        pass
    with pytest.raises(ConfigError, match="trim_silence needs webrtcvad, the VAD resemblyzer uses: pip install webrtcvad"):
        create("ge2e", trim_silence=True)


def test_kaldi_outputs_and_xvectors(tmp_path, reference):
    data = golden_data_dir(tmp_path / "data")
    run_tool(FEATURIZE, "--model", "ge2e", "--progress", "false", data, tmp_path / "out")
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    assert {k: v.shape for k, v in feats.items()} == {
        "spk1-utt1": (3, 256), "spk2-utt1": (3, 256), "spk3-chirp": (1, 256), "spk3-short": (1, 256)}
    assert (tmp_path / "out" / "frame_shift").read_text() == "0.77\n"
    assert (tmp_path / "out" / "utt2num_frames").read_text() == "spk1-utt1 3\nspk2-utt1 3\nspk3-chirp 1\nspk3-short 1\n"
    assert (tmp_path / "out" / "data" / "frame_shift").read_text() == "0.77\n"

    run_tool(FEATURIZE, "--model", "ge2e", "--pool", "mean", "--progress", "false", data, tmp_path / "xv")
    xv = dict(kaldiio.load_scp(str(tmp_path / "xv" / "xvector.scp")))
    for utt in GOLDEN_UTTS:
        assert xv[utt].shape == (256,) and np.linalg.norm(xv[utt]) == pytest.approx(1.0, abs=1e-6)
        assert cosine(xv[utt], reference[f"{utt}/plain_embed"]) >= 0.9999, utt
    spk = dict(kaldiio.load_scp(str(tmp_path / "xv" / "spk_xvector.scp")))
    assert np.allclose(spk["spk3"], (xv["spk3-chirp"] + xv["spk3-short"]) / 2, atol=1e-6)  # Kaldi's ivector-mean
    assert (tmp_path / "xv" / "num_utts.ark").read_text() == "spk1 1\nspk2 1\nspk3 2\n"
    assert not (tmp_path / "xv" / "feats.scp").exists()

    run_tool(SPEECH_REPS, "featurize", "--model", "ge2e", "--in-wav", golden_wav("spk1-utt1"),
             "--out-npy", tmp_path / "y.npy")
    assert np.abs(np.load(tmp_path / "y.npy") - feats["spk1-utt1"]).max() <= 1e-6
    from speech_reps.featurize import GE2EFeaturizer

    dvector = GE2EFeaturizer().file_to_dvector(str(golden_wav("spk1-utt1")))
    assert np.abs(dvector - xv["spk1-utt1"]).max() <= 1e-6


def test_listed_and_imported_lazily():
    proc = subprocess.run([str(SPEECH_REPS), "models"], capture_output=True, text=True, check=True)
    assert "ge2e" in proc.stdout.split()
    code = ("import sys; from speech_reps.models.registry import get_model_class; get_model_class('ge2e')\n"
            "assert 'torch' not in sys.modules and 'resemblyzer' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
