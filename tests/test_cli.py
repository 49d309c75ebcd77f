"""The seed-compatible single-file command: speech-reps featurize --in-wav x.wav --out-npy y.npy."""

import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from conftest import golden_ark, golden_wav, golden_wave, run_tool

SPEECH_REPS = Path(sys.executable).parent / "speech-reps"


def test_featurize_one_wav_to_npy(tmp_path, dither0):
    out = tmp_path / "y.npy"
    proc = run_tool(SPEECH_REPS, "featurize", "--model", "fbank", "--fbank-config", dither0,
                    "--in-wav", golden_wav("spk1-utt1"), "--out-npy", out)
    assert "318 frames x 80 dims" in proc.stderr
    feats, kaldi = np.load(out), golden_ark("fbank80.ark")["spk1-utt1"]
    assert feats.dtype == np.float32 and feats.shape == kaldi.shape
    assert np.abs(feats - kaldi)[kaldi > kaldi.max(1, keepdims=True) - 10].max() < 1e-3


def test_featurize_with_utterance_cmvn_and_resampling(tmp_path, dither0):
    sf.write(tmp_path / "x8k.wav", golden_wave("spk1-utt1")[::2].astype(np.int16), 8000)
    run_tool(SPEECH_REPS, "featurize", "--fbank-config", dither0, "--cmvn", "utt", "--norm-vars", "true",
             "--allow-resample", "true", "--in-wav", tmp_path / "x8k.wav", "--out-npy", tmp_path / "y.npy")
    feats = np.load(tmp_path / "y.npy")
    assert feats.shape == (318, 80)
    assert np.allclose(feats.mean(0), 0, atol=1e-4) and np.allclose(feats.std(0), 1, atol=1e-3)


def test_errors_are_one_line_with_the_program_name(tmp_path):
    sf.write(tmp_path / "x8k.wav", np.zeros(8000, dtype=np.int16), 8000)
    proc = run_tool(SPEECH_REPS, "featurize", "--in-wav", tmp_path / "x8k.wav", "--out-npy",
                    tmp_path / "y.npy", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"speech-reps: utterance x8k.wav ({tmp_path}/x8k.wav): sample rate 8000 Hz, "
                                   "the front end expects 16000 Hz (resample the data, or pass "
                                   "--allow-resample true)")


def test_models_lists_the_registry():
    lines = run_tool(SPEECH_REPS, "models").stdout.splitlines()
    assert lines[0].split() == ["model", "dim", "frame", "shift", "input", "rate", "weights", "extras"]
    assert [line.split()[0] for line in lines[1:]] == [
        "bertphone", "decoar", "decoar2", "fbank", "frill", "ge2e", "hubert", "mfcc", "trill",
        "trill-distilled", "wav2vec", "wav2vec2"]


def test_featurize_writes_a_kaldi_ark_and_pools_like_featurize_py(tmp_path, dither0):
    """--out-ark: the same matrix as --out-npy, in a Kaldi archive + scp; --pool mean: the model's
    pooling (GE2E: resemblyzer's unit-length d-vector), as steps/featurize.py --pool mean writes it."""
    import kaldiio

    from speech_reps.featurize import GE2EFeaturizer

    wav = golden_wav("spk1-utt1")
    run_tool(SPEECH_REPS, "featurize", "--fbank-config", dither0, "--in-wav", wav, "--out-npy", tmp_path / "f.npy",
             "--out-ark", tmp_path / "f.ark")
    (key, scp_feats), = kaldiio.load_scp(str(tmp_path / "f.scp")).items()
    assert key == "spk1-utt1" and (tmp_path / "f.scp").read_text().startswith(f"spk1-utt1 {tmp_path}/f.ark:")
    assert np.array_equal(np.array(scp_feats), np.load(tmp_path / "f.npy"))
    proc = run_tool(SPEECH_REPS, "featurize", "--model", "ge2e", "--pool", "mean", "--key", "u1", "--in-wav", wav,
                    "--out-ark", tmp_path / "x.ark", "--out-scp", tmp_path / "xvector.scp")
    assert "mean of 3 frames x 256 dims" in proc.stderr
    vector = np.array(kaldiio.load_scp(str(tmp_path / "xvector.scp"))["u1"])
    assert vector.shape == (256,) and vector.dtype == np.float32
    assert np.array_equal(vector, GE2EFeaturizer().file_to_dvector(wav))
    proc = run_tool(SPEECH_REPS, "featurize", "--in-wav", wav, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "speech-reps: featurize: give --out-npy <file>, --out-ark <file>, or both"


def test_outputs_are_written_exactly_where_named_or_not_at_all(tmp_path):
    """An scp that would be its own archive, a second output that cannot be written, a missing
    directory: one line, and nothing left behind; --out-npy writes the very name given."""
    wav = golden_wav("spk1-utt1")

    def featurize(*args):
        return run_tool(SPEECH_REPS, "featurize", "--in-wav", wav, *args, check=False)

    for args, error in (
            (["--out-ark", tmp_path / "g.scp"], f"--out-scp {tmp_path}/g.scp: the same file as the ark output "
                                                "(give --out-scp)"),
            (["--out-ark", tmp_path / "a.ark", "--out-scp", tmp_path / "a.ark"], "the same file as the ark output"),
            (["--out-npy", tmp_path / "n.ark", "--out-ark", tmp_path / "n.ark"], "the same file as the npy output"),
            (["--out-npy", tmp_path], f"--out-npy '{tmp_path}': expected a file name, not a directory"),
            (["--out-npy", tmp_path / "nodir" / "o.npy"], f"cannot write {tmp_path}/nodir/o.npy: No such file"),
            (["--out-npy", tmp_path / "j.npy", "--out-ark", tmp_path / "nodir" / "j.ark"], "cannot write "),
            (["--out-npy", tmp_path / "k.npy", "--key", "k"], "--out-scp and --key go with --out-ark")):
        proc = featurize(*args)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and error in proc.stderr, proc.stderr
        assert list(tmp_path.iterdir()) == [], (args, list(tmp_path.iterdir()))
    featurize("--out-npy", tmp_path / "o", "--out-ark", tmp_path / "o.ark")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", "o.ark", "o.scp"]
    assert np.load(tmp_path / "o").shape == (318, 80)
    umask = os.umask(0)
    os.umask(umask)
    assert all((p.stat().st_mode & 0o777) == 0o666 & ~umask for p in tmp_path.iterdir())  # not mkstemp's 0600


def test_every_help_has_an_example_and_succeeds():
    """--help: the usage with an e.g. line, exit 0 (Kaldi's scripts print one)."""
    for args in ([SPEECH_REPS, "--help"], [SPEECH_REPS, "featurize", "--help"], [SPEECH_REPS, "models", "--help"],
                 [Path(__file__).parents[1] / "utils" / "parallel" / "run.pl", "--help"],
                 [Path(__file__).parents[1] / "utils" / "parallel" / "slurm.pl", "--help"]):
        proc = run_tool(*args, check=False)
        assert proc.returncode == 0 and " e.g.: " in proc.stdout + proc.stderr, args
    proc = run_tool("bash", Path(__file__).parents[1] / "egs" / "mini" / "run.sh", "--stage", "abc", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().endswith("run.sh: --stage abc: expected a whole number")


def test_usage_errors_and_a_pipe_without_a_key_are_one_line(tmp_path):
    proc = run_tool(SPEECH_REPS, "featurize", "--in-wav", golden_wav("spk1-utt1"), "--out-npy", tmp_path / "o.npy",
                    "--bogus", "1", check=False)
    assert proc.returncode == 2 and proc.stderr == (
        "speech-reps: unrecognized arguments: --bogus 1 (see speech-reps --help)\n")
    proc = run_tool(SPEECH_REPS, "featurize", "--in-wav", f"cat {golden_wav('spk1-utt1')} |", "--out-ark",
                    tmp_path / "o.ark", check=False)
    assert proc.returncode == 1 and proc.stderr == (
        "speech-reps: featurize: --out-ark with a 'cmd |' input: give its utterance key with --key\n")
    assert list(tmp_path.iterdir()) == []
