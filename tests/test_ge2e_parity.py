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
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from conftest import parity_python, REPO, make_data_dir, run_tool
from ge2e_audio import PAUSED, reference_audio
from speech_reps.models import ge2e_frontend as fe
from speech_reps.models.base import Batch
from speech_reps.models.registry import create


@pytest.fixture(scope="module")
def resemblyzer_python():
    return parity_python("resemblyzer_venv.sh", "resemblyzer (resemblyzer 0.1.4, librosa, webrtcvad)")


@pytest.fixture(scope="module")
def resemblyzer_reference(tmp_path_factory, resemblyzer_python):
    python = resemblyzer_python
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


@pytest.mark.slow
def test_trim_silence_through_steps_featurize(resemblyzer_reference, resemblyzer_python, tmp_path):
    """--trim-silence true end to end, with webrtcvad (a C extension for this very Python) borrowed
    from the parity venv: d-vectors as preprocess_wav + embed_utterance, and all-silence audio
    fails alone, named."""
    site = Path(subprocess.run([resemblyzer_python, "-W", "ignore", "-c", "import webrtcvad; print(webrtcvad.__file__)"],
                               capture_output=True, text=True, check=True).stdout.strip()).parent
    vad = tmp_path / "vad"
    vad.mkdir()
    for f in [site / "webrtcvad.py", *site.glob("_webrtcvad*.so"), *site.glob("webrtcvad-*.dist-info")]:
        (vad / f.name).symlink_to(f)  # webrtcvad.py reads its version through pkg_resources
    audio = reference_audio()
    wavs = {}
    for utt, wave in ((PAUSED, audio[PAUSED]), ("spk1-utt1", audio["spk1-utt1"]), ("zz-silence", np.zeros(32000, np.float32))):
        wavs[utt] = tmp_path / f"{utt}.wav"
        sf.write(wavs[utt], np.round(wave * 32768).astype(np.int16), 16000)
    data = make_data_dir(tmp_path / "data", wavs, utt2spk={u: u.split("-")[0] for u in wavs})
    os.environ["PYTHONPATH"], old = str(vad), os.environ.get("PYTHONPATH")
    try:
        runs = {pool: run_tool(REPO / "steps" / "featurize.py", "--model", "ge2e", "--trim-silence", "true",
                               "--pool", pool, "--progress", "false", "--max-failed-frac", "0.5", data,
                               tmp_path / pool) for pool in ("none", "mean")}
    finally:
        os.environ.pop("PYTHONPATH") if old is None else os.environ.__setitem__("PYTHONPATH", old)
    assert f"utterance zz-silence ({wavs['zz-silence']}): the VAD (trim_silence) found no speech" in runs["mean"].stderr
    assert (tmp_path / "mean" / "xvector.failed").read_text() == "zz-silence the VAD (trim_silence) found no speech\n"
    xv = dict(kaldiio.load_scp(str(tmp_path / "mean" / "xvector.scp")))
    for utt in (PAUSED, "spk1-utt1"):
        assert cosine(xv[utt], resemblyzer_reference[f"{utt}/pre_embed"]) >= 0.9999, utt
    frames = (tmp_path / "none" / "utt2num_frames").read_text()
    assert frames == f"{PAUSED} {len(resemblyzer_reference[PAUSED + '/pre_partials'])}\nspk1-utt1 3\n"
