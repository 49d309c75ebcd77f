"""wav2vec / wav2vec 2.0 / HuBERT ports against fairseq itself, on checkpoints fairseq wrote.

fairseq lives in its own venv (tests/parity/fairseq_venv.sh, cached in .cache/parity/): it builds
its models with seeded random weights — wav2vec 1.0 at wav2vec_large's real size — saves them in
its checkpoint formats (Namespace args, omegaconf DictConfig, plain dict) and runs them on the
golden wavs one by one. Here the port loads those files (without fairseq) and runs them batched.
If the reference cannot be built the test fails (it does not skip).
"""

import subprocess

import numpy as np
import pytest

from conftest import parity_python, GOLDEN_UTTS, REPO, golden_wave
from speech_reps.models.base import Batch
from speech_reps.models.registry import create


@pytest.fixture(scope="module")
def fairseq_reference(tmp_path_factory):
    python = parity_python("fairseq_venv.sh", "fairseq (fairseq-fixed 0.12.3.1)")
    out = tmp_path_factory.mktemp("fairseq")
    np.savez(out / "audio.npz", **{u: golden_wave(u) / 32768.0 for u in GOLDEN_UTTS})
    proc = subprocess.run([python, str(REPO / "tests" / "parity" / "wav2vec_fairseq_reference.py"),
                           "--audio", str(out / "audio.npz"), "--out-dir", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


CASES = [  # (checkpoint, our model, options, reference output)
    ("wav2vec_large", "wav2vec", {}, "c"),
    ("wav2vec_large", "wav2vec", {"output": "z"}, "z"),
    ("wav2vec2_gn", "wav2vec2", {}, "last"),
    ("wav2vec2_gn", "wav2vec2", {"layer": 1}, "layer1"),
    ("wav2vec2_gn", "wav2vec2", {"layer": 0}, "layer0"),
    ("wav2vec2_ln", "wav2vec2", {}, "last"),
    ("wav2vec2_ln", "wav2vec2", {"layer": 1}, "layer1"),
    ("hubert", "hubert", {}, "last"),
    ("hubert", "hubert", {"layer": 1}, "layer1"),
]


@pytest.mark.slow
@pytest.mark.parametrize("ckpt,model,options,ref_key", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_port_equals_fairseq(fairseq_reference, ckpt, model, options, ref_key):
    reference = dict(np.load(fairseq_reference / f"{ckpt}.npz"))
    m = create(model, params=str(fairseq_reference / f"{ckpt}.pt"), **options)
    waves = [golden_wave(u) for u in GOLDEN_UTTS]
    batched = m.featurize(Batch(GOLDEN_UTTS, waves, [len(w) for w in waves]))
    for utt, wave, ours in zip(GOLDEN_UTTS, waves, batched):
        ref = reference[f"{utt}/{ref_key}"]
        if model == "wav2vec":  # fairseq's frames, then the Kaldi alignment: at most one repeated
            assert len(ours) - len(ref) in (0, 1) and len(ours) == 1 + (len(wave) - 400) // 160
            ours = ours[:len(ref)]
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() <= 1e-4, (utt, np.abs(ours - ref).max())
        alone = m.featurize(Batch([utt], [wave], [len(wave)]))[0]
        assert np.abs(alone[:len(ref)] - ours).max() <= 1e-5
