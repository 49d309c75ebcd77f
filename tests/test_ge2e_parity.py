"""GE2E against resemblyzer itself: mel filters, mel power, silence trimming and d-vectors.

resemblyzer and its real dependencies (librosa, webrtcvad) live in their own venv
(tests/parity/resemblyzer_venv.sh, cached in .cache/parity/). There it runs
``VoiceEncoder().embed_utterance`` on real speech, volume-normalised only (speech-reps' default)
and through ``preprocess_wav`` (with webrtcvad's silence trimming), and our own trimming code
runs beside it with webrtcvad. Here the port (without resemblyzer) is compared with the results.
If the reference cannot be built the test fails (it does not skip).
"""

import os
import subprocess

import numpy as np
import pytest

from conftest import REPO
from ge2e_audio import reference_audio
from speech_reps.models import ge2e_frontend as fe
from speech_reps.models.base import Batch
from speech_reps.models.registry import create


@pytest.fixture(scope="module")
def resemblyzer_reference(tmp_path_factory):
    proc = subprocess.run(["bash", str(REPO / "tests" / "parity" / "resemblyzer_venv.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail("resemblyzer parity venv could not be built (resemblyzer 0.1.4, librosa, webrtcvad):\n"
                    + proc.stderr[-2000:])
    python = proc.stdout.strip().splitlines()[-1]
    out = tmp_path_factory.mktemp("resemblyzer")
    np.savez(out / "audio.npz", **reference_audio())
    proc = subprocess.run([python, "-W", "ignore", str(REPO / "tests" / "parity" / "ge2e_resemblyzer_reference.py"),
                           "--audio", str(out / "audio.npz"), "--out", str(out / "ref.npz")],
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out / "ref.npz"))


@pytest.fixture(scope="module")
def ge2e():
    return create("ge2e")


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.slow
def test_mel_filters_equal_librosas(resemblyzer_reference):
    assert np.array_equal(fe.mel_filters(), resemblyzer_reference["librosa_mel_filters"])


@pytest.mark.slow
def test_front_end_and_d_vectors_equal_resemblyzers(resemblyzer_reference, ge2e):
    ref = resemblyzer_reference
    for utt, wave in reference_audio().items():
        ours_wave = ge2e.prepare_wave(wave * np.float32(32768.0))
        mel = ref[f"{utt}/plain_mel"]
        ours_mel = fe.mel_power(ours_wave / np.float32(32768.0), len(mel), ge2e.filters)
        assert np.abs(ours_mel - mel).max() <= 1e-5 * mel.max(), utt
        partials = ge2e.featurize(Batch([utt], [ours_wave], [len(ours_wave)]))[0]
        assert partials.shape == ref[f"{utt}/plain_partials"].shape, utt
        assert np.abs(partials - ref[f"{utt}/plain_partials"]).max() <= 1e-5, utt
        assert cosine(ge2e.pool(partials, "mean"), ref[f"{utt}/plain_embed"]) >= 0.9999, utt


@pytest.mark.slow
def test_silence_trimming_and_trimmed_d_vectors_equal_resemblyzers(resemblyzer_reference, ge2e):
    ref = resemblyzer_reference
    for utt in reference_audio():
        trimmed = ref[f"{utt}/pre_wave"]  # resemblyzer's preprocess_wav
        ours = ref[f"{utt}/ours_trimmed"]  # our normalize_volume + trim_long_silences, with webrtcvad
        assert len(ours) == len(trimmed) and np.abs(ours - trimmed).max() <= 1e-6, utt
        wave = trimmed * np.float32(32768.0)  # what prepare_wave hands on with trim_silence
        partials = ge2e.featurize(Batch([utt], [wave], [len(wave)]))[0]
        assert partials.shape == ref[f"{utt}/pre_partials"].shape, utt
        assert cosine(ge2e.pool(partials, "mean"), ref[f"{utt}/pre_embed"]) >= 0.9999, utt
    assert len(ref["spk1-pause-spk2/pre_wave"]) < len(reference_audio()["spk1-pause-spk2"]) - 16000 + 480
