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

from conftest import parity_python, GOLDEN_UTTS, REPO, SPEECH_UTTS, golden_wave
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


@pytest.fixture(scope="module")
def fairseq_base_reference(tmp_path_factory):
    """wav2vec 2.0 and HuBERT at base size (12 layers x 768, 95M weights), on the two speech wavs
    (3.2 s and 2.3 s)."""
    python = parity_python("fairseq_venv.sh", "fairseq (fairseq-fixed 0.12.3.1)")
    out = tmp_path_factory.mktemp("fairseq_base")
    np.savez(out / "audio.npz", **{u: golden_wave(u) / 32768.0 for u in SPEECH_UTTS})
    proc = subprocess.run([python, str(REPO / "tests" / "parity" / "wav2vec_fairseq_reference.py"),
                           "--audio", str(out / "audio.npz"), "--out-dir", str(out),
                           "--models", "wav2vec2_base,hubert_base"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("model", ["wav2vec2", "hubert"])
def test_base_size_equals_fairseq(fairseq_base_reference, model):
    """The output and layer 1, batched, against fairseq on each wav alone. Bound 1e-4: the
    outputs are LayerNorm outputs with random gains, up to ~15, where a float32 ulp is 9.5e-7;
    seven 512-channel convolutions and 12 layers, summed in another order, measured 1.5e-5
    (wav2vec 2.0) and 1.4e-5 (HuBERT) on the last layer, 1.0e-5 and 9.0e-6 on layer 1. GELU's
    tanh form in place of the exact one moves the last layer by 6.6e-3."""
    reference = dict(np.load(fairseq_base_reference / f"{model}_base.npz"))
    waves = [golden_wave(u) for u in SPEECH_UTTS]
    for layer, ref_key in ((None, "last"), (1, "layer1")):
        m = create(model, params=str(fairseq_base_reference / f"{model}_base.pt"), layer=layer)
        assert m.dim == 768 and sum(p.numel() for p in m.net.parameters()) > 94e6  # base: 94.4M
        batched = m.featurize(Batch(SPEECH_UTTS, waves, [len(w) for w in waves]))
        for utt, ours in zip(SPEECH_UTTS, batched):
            ref = reference[f"{utt}/{ref_key}"]
            assert ours.shape == ref.shape == (len(ref), 768) and len(ref) > 100
            assert np.abs(ours - ref).max() <= 1e-4, (utt, ref_key, np.abs(ours - ref).max())
