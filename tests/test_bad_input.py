"""The catalogue of bad input: every per-utterance failure is named and the rest is written;
fatal errors are early and clear; a killed or starved run resumes to byte-identical output."""

import os
import random
import resource
import signal
import subprocess
import sys
import time

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, golden_wav, golden_wave, make_data_dir, run_tool
from decoar_files import mxnet_names, random_weights, write_params
from speech_reps.frontend import FeatureOptions, FrontEnd, FrontEndSpec

FEATURIZE = REPO / "steps" / "featurize.py"
GOOD = ["good1", "good2"]


def bad_data_dir(root):
    """Two good utterances among one of every per-utterance failure."""
    root.mkdir(parents=True)
    wave = golden_wave("spk1-utt1").astype(np.int16)
    (root / "junk.wav").write_bytes(b"RIFF but not really a wav file")
    sf.write(root / "rate8k.wav", wave[::2], 8000)
    sf.write(root / "stereo.wav", np.stack([wave, wave], 1), 16000)
    sf.write(root / "empty.wav", np.zeros(0, np.int16), 16000)
    sf.write(root / "tiny.wav", wave[:200], 16000)
    nan = wave.astype(np.float32) / 32768
    nan[100] = np.nan
    sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    wav = {
        "good1": golden_wav("spk1-utt1"), "good2": f"cat {golden_wav('spk2-utt1')} |",
        "r-corrupt": root / "junk.wav", "r-empty": root / "empty.wav", "r-emptypipe": "true |",
        "r-missing": root / "gone.wav", "r-nan": root / "nan.wav", "r-pipefail": "exit 3 |",
        "r-rate": root / "rate8k.wav", "r-stereo": root / "stereo.wav", "r-tiny": root / "tiny.wav",
        "rec": golden_wav("spk3-chirp"),  # 1.7 s, cut by the segments below
    }
    segments = {u: f"{u} 0 -1" for u in wav if u != "rec"}  # <recording> <start> <end>
    segments.update({"s-backwards": "rec 1.0 0.5", "s-pastend": "rec 2.5 3.0"})
    utts = sorted(segments)
    return make_data_dir(root / "data", {k: wav[k] for k in sorted(wav)},
                         segments="".join(f"{u} {segments[u]}\n" for u in utts),
                         utt2spk={u: "spk" for u in utts})


EXPECTED = {  # utterance -> its reason, as it appears on stderr and in <out-dir>/failed
    "r-corrupt": "cannot decode file as audio",
    "r-empty": "empty audio",
    "r-emptypipe": "command produced no output",
    "r-missing": "file not found: ",
    "r-nan": "audio contains NaN or Inf",
    "r-pipefail": "command exited with code 3",
    "r-rate": "sample rate 8000 Hz, the front end expects 16000 Hz",
    "r-stereo": "audio has 2 channels; choose one with --channel N",
    "r-tiny": "shorter than the model's receptive field (200 samples give no frame)",
    "s-backwards": "invalid segment: end 0.5s is not after start 1s",
    "s-pastend": "segment starts at 2.5s, after the recording's end (1.7s)",
}


def test_every_bad_utterance_is_named_and_the_good_ones_are_written(tmp_path, dither0):
    data = bad_data_dir(tmp_path / "in")
    proc = run_tool(FEATURIZE, "--fbank-config", dither0, "--progress", "false", data, tmp_path / "out", check=False)
    assert proc.returncode == 1  # 11 of 13 failed: more than --max-failed-frac 0.05
    for utt, reason in EXPECTED.items():
        lines = [line for line in proc.stderr.splitlines() if f"utterance {utt} (" in line]
        assert lines and reason in lines[-1], (utt, proc.stderr)
    failed = dict(line.split(" ", 1) for line in (tmp_path / "out" / "failed").read_text().splitlines())
    assert sorted(failed) == sorted(EXPECTED) and all(EXPECTED[u] in failed[u] for u in EXPECTED)
    assert "done 2 utterances" in proc.stderr and "failed 11" in proc.stderr
    assert f"{data}/wav.scp:6: r-missing: file not found" in proc.stderr  # reported before any work
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    frontend = FrontEnd(FrontEndSpec(FeatureOptions.from_file("fbank", dither0)))
    assert sorted(feats) == GOOD
    for utt, ref in zip(GOOD, ("spk1-utt1", "spk2-utt1")):
        assert np.array_equal(feats[utt], frontend.features(utt, golden_wave(ref)))
    assert (tmp_path / "out" / "utt2num_frames").read_text() == "good1 318\ngood2 297\n"


def test_nan_model_output_fails_those_utterances(tmp_path):
    weights = random_weights(40, 16, 1)
    weights["proj.bias"][3] = np.nan
    params = write_params(tmp_path / "nan.params", mxnet_names(weights, "structural"))
    data = make_data_dir(tmp_path / "data", {"a": golden_wav("spk1-utt1")})
    proc = run_tool(FEATURIZE, "--model", "decoar", "--params", params, "--progress", "false",
                    data, tmp_path / "out", check=False)
    assert proc.returncode == 1 and "utterance a (model output): model output contains NaN or Inf" in proc.stderr
    assert (tmp_path / "out" / "feats.scp").read_text() == ""


@pytest.mark.parametrize("make_params,message", [
    (lambda p: p.write_bytes(b"\x12\x01\x00\x00\x00\x00\x00\x00" + b"\x00" * 20), "not an MXNet .params file"),
    (lambda p: p.write_bytes(write_params(p, mxnet_names(random_weights(), "structural")).read_bytes()[:3000]),
     "needs 5120 bytes, file has"),
])
def test_bad_checkpoints_are_fatal_and_leave_nothing(tmp_path, make_params, message):
    params = tmp_path / "m.params"
    make_params(params)
    data = make_data_dir(tmp_path / "data", {"a": golden_wav("spk1-utt1")})
    proc = run_tool(FEATURIZE, "--model", "decoar", "--params", params, data, tmp_path / "out", check=False)
    assert proc.returncode == 1 and f"featurize.py: {params}" in proc.stderr and message in proc.stderr
    assert not (tmp_path / "out" / "feats.scp").exists()


def test_fatal_option_and_output_errors(tmp_path):
    data = make_data_dir(tmp_path / "data", {"a": golden_wav("spk1-utt1")})
    proc = run_tool(FEATURIZE, "--model", "nope", data, tmp_path / "out", check=False)
    assert proc.returncode == 2 and "invalid choice: 'nope'" in proc.stderr
    proc = run_tool(FEATURIZE, "--nope", "1", data, tmp_path / "out", check=False)
    assert proc.returncode == 2 and "unrecognized arguments: --nope" in proc.stderr
    (tmp_path / "file").write_text("")
    proc = run_tool(FEATURIZE, data, tmp_path / "file" / "out", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"featurize.py: cannot write to {tmp_path}/file/out: Not a directory"


def many_utterances(root, n=40, delay=0.0):
    """n utterances; with ``delay``, each comes through a pipe that takes that long."""
    wav = {f"u{i:03d}": golden_wav(["spk1-utt1", "spk2-utt1", "spk3-chirp"][i % 3]) for i in range(n)}
    if delay:
        wav = {u: f"sleep {delay}; cat {w} |" for u, w in wav.items()}
    wav["u007"] = "false |"  # a failure too must survive the resume
    return make_data_dir(root, wav, utt2spk={u: u for u in wav})


def outputs(out):
    text = lambda name: (out / name).read_text().replace(str(out), "OUT")  # noqa: E731
    return (out / "feats.ark").read_bytes(), text("feats.scp"), text("utt2num_frames"), text("failed")


ARGS = ["--batch-frames", "700", "--progress", "false", "--max-failed-frac", "0.1"]


def test_disk_full_then_resume_is_byte_identical(tmp_path, dither0):
    data = many_utterances(tmp_path / "data")
    run_tool(FEATURIZE, "--fbank-config", dither0, *ARGS, data, tmp_path / "clean")
    limit = 400_000  # bytes: the archive outgrows it part way

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    cmd = [str(FEATURIZE), "--fbank-config", str(dither0), *ARGS, str(data), str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=small_disk, env=env)
    assert proc.returncode == 1 and "File too large; rerun the same command to resume" in proc.stderr
    assert not (tmp_path / "out" / "feats.scp").exists() and (tmp_path / "out" / "feats.ark.journal").exists()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "resuming:" in proc.stderr
    assert outputs(tmp_path / "out") == outputs(tmp_path / "clean")


def test_kill_at_random_points_then_resume_is_byte_identical(tmp_path, dither0):
    data = many_utterances(tmp_path / "data", 60, delay=0.05)  # about 4 s of work
    run_tool(FEATURIZE, "--fbank-config", dither0, *ARGS, data, tmp_path / "clean")
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    cmd = [str(FEATURIZE), "--fbank-config", str(dither0), *ARGS, str(data), str(tmp_path / "out")]
    rng = random.Random(1)
    resumed = 0
    journal = tmp_path / "out" / "feats.ark.journal"
    for _ in range(4):
        started = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        while proc.poll() is None and time.time() < started + 30 and not (
                journal.exists() and journal.stat().st_mtime > started):
            time.sleep(0.02)  # until this run has written to the journal (however slow the machine)
        time.sleep(rng.uniform(0.2, 1.2))
        proc.send_signal(signal.SIGKILL)
        resumed += "resuming:" in proc.communicate()[1]
    assert resumed >= 2  # later runs really started from what earlier ones finished
    final = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert final.returncode == 0, final.stderr
    assert outputs(tmp_path / "out") == outputs(tmp_path / "clean")
    assert not list((tmp_path / "out").glob("*.journal")) and not list((tmp_path / "out").glob("*.tmp"))


def test_utterance_too_long_for_memory_fails_alone(tmp_path):
    """A recording too long for the model's memory (here: wav2vec's 512-channel convolutions on
    10 min of audio under a 5 GB address-space limit) fails with a clear reason; the job goes on
    and writes the others."""
    from fairseq_files import wav2vec_checkpoint

    wide = "[(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2), (512, 1, 1), (512, 1, 1)]"
    params = wav2vec_checkpoint(tmp_path / "w2v.pt", conv_feature_layers=wide)
    long_wav = tmp_path / "long.wav"
    sf.write(long_wav, np.tile(golden_wave("spk1-utt1"), 190)[: 600 * 16000].astype(np.int16), 16000)
    data = make_data_dir(tmp_path / "data", {"a": golden_wav("spk1-utt1"), "b": long_wav, "c": golden_wav("spk2-utt1")})

    def limited_memory():
        limit = 5 * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    cmd = [str(FEATURIZE), "--model", "wav2vec", "--params", str(params), "--num-workers", "0",
           "--batch-frames", "200000", "--max-failed-frac", "0.5", "--progress", "false",
           str(data), str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=limited_memory, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "utterance b (model): the model ran out of memory on 600 s of audio" in proc.stderr
    failed = (tmp_path / "out" / "failed").read_text()
    assert failed.startswith("b the model ran out of memory on 600 s of audio")
    assert (tmp_path / "out" / "utt2num_frames").read_text().split()[::2] == ["a", "c"]
