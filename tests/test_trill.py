"""TRILL / TRILL-distilled / FRILL through a SavedModel with TRILL's signature, built here."""

import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest

pytest.importorskip("tensorflow_hub", reason="TensorFlow is installed by `make test`")

from conftest import REPO, golden_data_dir, golden_wav, run_tool  # noqa: E402
from speech_reps.errors import ConfigError  # noqa: E402
from speech_reps.models.base import Batch  # noqa: E402
from speech_reps.models.registry import create  # noqa: E402
from speech_reps.models.trill import chunk_plan, trill_frames  # noqa: E402
from trill_savedmodel import build  # noqa: E402

FEATURIZE = REPO / "steps" / "featurize.py"
SPEECH_REPS = Path(sys.executable).parent / "speech-reps"


@pytest.fixture(scope="module")
def trill_dir(tmp_path_factory):
    return build(tmp_path_factory.mktemp("trill") / "trill_3")


@pytest.fixture(scope="module")
def trill(trill_dir):
    return create("trill", params=str(trill_dir))


def noise(n, seed=0):
    return (np.random.default_rng(seed).standard_normal(n) * 3000).astype(np.float32)


def run_whole(model, wave):
    """The model on the whole clip in one call: the reference for chunking."""
    return model._call((wave / np.float32(32768.0))[None])[0]


@pytest.mark.parametrize("n", [4321, 15999, 16000, 16001, 18319, 18320, 18321, 21039, 21040, 160000])
def test_frame_count_formula_at_every_boundary(trill, n):
    mel = 1 + (max(n, 16000) - 400) // 160
    assert trill.num_frames(n) == trill_frames(n) == 1 + (mel - 96) // 17
    assert run_whole(trill, noise(n)).shape == (trill.num_frames(n), 48)
    assert trill_frames(18319) == 1 and trill_frames(18320) == 2


def test_chunked_equals_whole_on_a_minute(trill):
    wave = noise(16000 * 60 + 1234)
    plan = chunk_plan(len(wave), trill.chunk_frames)
    assert len(plan) > 5 and all(start % 2720 == 0 for start, _, _ in plan)
    assert all(length >= 16000 for _, length, _ in plan)
    chunked = trill.featurize(Batch(["u"], [wave], [len(wave)]))[0]
    whole = run_whole(trill, wave)
    assert chunked.shape == whole.shape == (trill.num_frames(len(wave)), 48)
    assert np.abs(chunked - whole).max() <= 1e-5


def test_batched_equals_one_by_one(trill):
    waves = [noise(n, i) for i, n in enumerate((16000 * 25, 8000, 16000 * 12 + 77, 8000, 40000, 16000 * 25))]
    batched = trill.featurize(Batch([str(i) for i in range(len(waves))], waves, [len(w) for w in waves]))
    for w, out in zip(waves, batched):
        alone = trill.featurize(Batch(["x"], [w], [len(w)]))[0]
        assert out.shape == (trill.num_frames(len(w)), 48)
        assert np.abs(out - alone).max() <= 1e-5


def test_outputs_and_variants(tmp_path, trill_dir):
    emb = create("trill", params=str(trill_dir), output="embedding")
    assert (emb.dim, emb.frame_shift) == (16, 0.17)
    with pytest.raises(ConfigError, match="--output z: expected one of layer19, embedding"):
        create("trill", params=str(trill_dir), output="z")
    assert create("trill-distilled", params=str(trill_dir)).dim == 16
    frill_dir = build(tmp_path / "frill_1", frill=True)
    frill = create("frill", params=str(frill_dir))
    wave = noise(30000)
    assert np.abs(frill.featurize(Batch(["u"], [wave], [30000]))[0] - run_whole(emb, wave)).max() <= 1e-5


def test_wrong_or_missing_model_is_a_clear_error(tmp_path, trill_dir):
    with pytest.raises(ConfigError, match=r"trill model not found: .*nowhere\. Pass --params"):
        create("trill", params=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="cannot use .* as a trill model"):
        create("trill", params=str(build(tmp_path / "frill_1", frill=True)))


def test_without_tensorflow_says_what_to_install(trill_dir):
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from speech_reps.models.registry import create\n"
            f"create('trill', params={str(trill_dir)!r})\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "--model trill needs TensorFlow, which is not installed" in proc.stderr
    assert "pip install 'speech-reps[trill]'" in proc.stderr


def test_kaldi_outputs_and_pooling(tmp_path, trill_dir):
    from speech_reps.featurize import TrillFeaturizer

    data = golden_data_dir(tmp_path / "data")
    run_tool(FEATURIZE, "--model", "trill", "--params", trill_dir, "--progress", "false", data, tmp_path / "out")
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    assert {k: v.shape for k, v in feats.items()} == {
        "spk1-utt1": (14, 48), "spk2-utt1": (12, 48), "spk3-chirp": (5, 48), "spk3-short": (1, 48)}
    assert (tmp_path / "out" / "frame_shift").read_text() == "0.17\n"
    seed = TrillFeaturizer(str(trill_dir)).file_to_feats(str(golden_wav("spk1-utt1")))
    assert np.abs(seed - feats["spk1-utt1"]).max() <= 1e-5

    run_tool(FEATURIZE, "--model", "trill", "--params", trill_dir, "--pool", "mean", "--progress", "false",
             data, tmp_path / "xv")
    xv = dict(kaldiio.load_scp(str(tmp_path / "xv" / "xvector.scp")))
    assert xv["spk1-utt1"].shape == (48,) and np.allclose(xv["spk1-utt1"], feats["spk1-utt1"].mean(0), atol=1e-6)
    spk = dict(kaldiio.load_scp(str(tmp_path / "xv" / "spk_xvector.scp")))
    assert np.allclose(spk["spk3"], (xv["spk3-chirp"] + xv["spk3-short"]) / 2, atol=1e-6)
    assert (tmp_path / "xv" / "num_utts.ark").read_text() == "spk1 1\nspk2 1\nspk3 2\n"
    assert not (tmp_path / "xv" / "feats.scp").exists()

    run_tool(SPEECH_REPS, "featurize", "--model", "trill", "--params", trill_dir, "--output", "embedding",
             "--in-wav", golden_wav("spk3-short"), "--out-npy", tmp_path / "y.npy")
    assert np.load(tmp_path / "y.npy").shape == (1, 16)
