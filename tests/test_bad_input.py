"""The catalogue of bad input: every per-utterance failure is named and the rest is written;
fatal errors are early and clear; a killed or starved run resumes to byte-identical output."""

import os
import threading
import random
import resource
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

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
    full = golden_wav("spk1-utt1").read_bytes()
    (root / "truncated.wav").write_bytes(full[:len(full) // 2])  # the header still declares it all
    (root / "headerless.pcm").write_bytes(MPEG_LIKE + wave.tobytes())  # raw PCM, no header
    (root / "a-directory.wav").mkdir()
    wav = {
        "good1": golden_wav("spk1-utt1"), "good2": f"cat {golden_wav('spk2-utt1')} |",
        "r-corrupt": root / "junk.wav", "r-empty": root / "empty.wav", "r-emptypipe": "true |",
        "r-missing": root / "gone.wav", "r-nan": root / "nan.wav", "r-pipefail": "exit 3 |",
        "r-rate": root / "rate8k.wav", "r-stereo": root / "stereo.wav", "r-tiny": root / "tiny.wav",
        "rec": golden_wav("spk3-chirp"),  # 1.7 s, cut by the segments below
        "r-truncated": root / "truncated.wav", "r-headerless": root / "headerless.pcm",
        "r-dir": root / "a-directory.wav", "r-arkpast": f"{golden_wav('spk1-utt1')}:999999",
        "r-hang": "sleep 60 |", "s-self": golden_wav("spk3-chirp"),
    }
    segments = {u: f"{u} 0 -1" for u in wav if u not in ("rec", "s-self")}  # <recording> <start> <end>
    segments.update({"s-backwards": "rec 1.0 0.5", "s-pastend": "rec 2.5 3.0", "s-nan": "rec nan 1.0",
                     "s-self": "s-self 1.0 0.5"})  # a segment named as its recording is still cut
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
    "r-truncated": "truncated file: the header declares 51278 samples (3.205 s) of audio, the data holds",
    "r-headerless": "cannot decode file as audio: no audio header that libsndfile recognises",
    "r-dir": "is a directory, not an audio file: ",
    "r-arkpast": "offset 999999 is past the end of ",
    "r-hang": "command did not finish within --pipe-timeout 1 s; killed",
    "s-nan": "invalid segment: times nan..1 must be finite numbers",
    "s-self": "invalid segment: end 0.5s is not after start 1s",
}
MPEG_LIKE = b"\xff\xfb\x90\x64"  # the first samples read as an MPEG-1 layer III frame header


def test_every_bad_utterance_is_named_and_the_good_ones_are_written(tmp_path, dither0):
    data = bad_data_dir(tmp_path / "in")
    proc = run_tool(FEATURIZE, "--fbank-config", dither0, "--progress", "false", "--pipe-timeout", "1",
                    data, tmp_path / "out", check=False)
    assert proc.returncode == 1  # 18 of 20 failed: more than --max-failed-frac 0.05
    for utt, reason in EXPECTED.items():
        lines = [line for line in proc.stderr.splitlines() if f"utterance {utt} (" in line]
        assert lines and reason in lines[-1], (utt, proc.stderr)
    failed = dict(line.split(" ", 1) for line in (tmp_path / "out" / "failed").read_text().splitlines())
    assert sorted(failed) == sorted(EXPECTED) and all(EXPECTED[u] in failed[u] for u in EXPECTED)
    assert "done 2 utterances" in proc.stderr and "failed 18" in proc.stderr
    assert f"{data}/wav.scp:10: r-missing: file not found" in proc.stderr  # reported before any work
    assert f"{data}/wav.scp:5: r-dir: is a directory" in proc.stderr
    assert f"{data}/wav.scp:3: r-arkpast: offset 999999 is past the end" in proc.stderr
    assert f"{data}/segments:18: s-nan: invalid segment nan..1 (times must be finite numbers)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "--channel" not in [line for line in proc.stderr.splitlines() if "r-headerless" in line][-1]
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    frontend = FrontEnd(FrontEndSpec(FeatureOptions.from_file("fbank", dither0)))
    assert sorted(feats) == GOOD
    for utt, ref in zip(GOOD, ("spk1-utt1", "spk2-utt1")):
        assert np.array_equal(feats[utt], frontend.features(utt, golden_wave(ref)))
    assert (tmp_path / "out" / "utt2num_frames").read_text() == "good1 318\ngood2 297\n"


def test_speaker_cmvn_a_bad_utterance_fails_once_and_alone(tmp_path, dither0):
    """--cmvn spk reads every utterance twice (stats, then features): one that fails in the first
    pass is named once and not read again, and one whose features are not finite (float audio of
    an extreme scale) fails alone, not with its speaker's good utterances."""
    x = golden_wave("spk1-utt1") / 32768
    sf.write(tmp_path / "huge.wav", (x * 1e30).astype(np.float32), 16000, subtype="FLOAT")
    data = make_data_dir(tmp_path / "data", {
        "a1": golden_wav("spk1-utt1"), "a2": tmp_path / "huge.wav", "a3": golden_wav("spk2-utt1"),
        "b1": f"echo run >> {tmp_path}/count; exit 1 |", "b2": golden_wav("spk1-utt1")},
        utt2spk={"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B"})
    proc = run_tool(FEATURIZE, "--fbank-config", dither0, "--cmvn", "spk", "--progress", "false",
                    "--max-failed-frac", "1", data, tmp_path / "out", check=False)
    assert proc.returncode == 0, proc.stderr
    errors = [line.partition(" ERROR: ")[2] for line in proc.stderr.splitlines() if " ERROR: " in line]
    assert errors == [f"utterance a2 ({tmp_path}/huge.wav): features contain NaN or Inf (audio of an "
                      "extreme scale?): left out of its speaker's CMVN",
                      f"utterance b1 (echo run >> {tmp_path}/count; exit 1 |): command exited with code 1"]
    assert (tmp_path / "count").read_text() == "run\n"  # not run again for the second pass
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    assert sorted(feats) == ["a1", "a3", "b2"]
    frontend = FrontEnd(FrontEndSpec(FeatureOptions.from_file("fbank", dither0)))
    raw = {u: frontend.features(u, golden_wave(w)) for u, w in (("a1", "spk1-utt1"), ("a3", "spk2-utt1"))}
    both = np.concatenate(list(raw.values()))
    for u in ("a1", "a3"):  # the speaker's mean of its two good utterances only
        np.testing.assert_allclose(feats[u], raw[u] - both.mean(0), atol=2e-4)


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


def _data(tmp, **tables):
    return make_data_dir(tmp / "data", {"a": golden_wav("spk1-utt1")}, utt2spk={"a": "s"}, **tables)


def _conf(tmp, *lines):
    (tmp / "f.conf").write_bytes(b"".join(line + b"\n" for line in lines))
    return ["--fbank-config", tmp / "f.conf", _data(tmp)]


def _params(tmp, mangle):
    weights = mxnet_names(random_weights(8, 4, 1), "structural")
    data = bytearray(write_params(tmp / "m.params", weights).read_bytes())
    mangle(data, weights)
    (tmp / "m.params").write_bytes(data)
    return ["--model", "decoar", "--params", tmp / "m.params", _data(tmp)]


def _overflowing_shape(data, weights):
    """The first array's two int64 dims become 2**32 each: their product overflows int64 to 0."""
    data[36:52] = struct.pack("<qq", 2**32, 2**32)


def _name_not_utf8(data, weights):
    data[-1] = 0xFF  # the last byte of the last name


def _bytes_table(tmp, name, text):
    data = _data(tmp)
    (data / name).write_bytes(text)
    return [data]


def _segments_dir(tmp):
    data = _data(tmp)
    (data / "segments").mkdir()
    return [data]


FATAL = {  # case -> (arguments before <out-dir> given the tmp dir, what the error says)
    "table not UTF-8": (lambda t: _bytes_table(t, "wav.scp", b"a\xff " + bytes(golden_wav("spk1-utt1")) + b"\n"),
                        "data/wav.scp:1: not UTF-8 (byte 0xff at column 2)"),
    "table with a BOM": (lambda t: _bytes_table(t, "utt2spk", b"\xef\xbb\xbfa s\n"),
                         "data/utt2spk:1: the file starts with a UTF-8 byte order mark (BOM)"),
    "empty segments": (lambda t: _bytes_table(t, "segments", b""), "data/segments: empty"),
    "segments a directory": (lambda t: _segments_dir(t), "data/segments: is a directory, not a file"),
    "frame shift 0": (lambda t: _conf(t, b"--frame-shift=0"), "f.conf:1: --frame-shift=0: must be > 0"),
    "NaN pre-emphasis": (lambda t: _conf(t, b"--preemphasis-coefficient=nan"),
                         "f.conf:1: --preemphasis-coefficient=nan: must be a finite number"),
    "no mel bins": (lambda t: _conf(t, b"--num-mel-bins=0"), "f.conf:1: --num-mel-bins=0: must be at least 3"),
    "too many mel bins": (lambda t: _conf(t, b"--num-mel-bins=80", b"--frame-length=10"),
                          "f.conf:1: --num-mel-bins=80: mel bin 2 of 80 gets no FFT bin (the 256-point FFT"),
    "conf not UTF-8": (lambda t: _conf(t, b"--dither=0 # \xe9"), "f.conf:1: not UTF-8 (byte 0xe9 at column 14)"),
    "int64 overflow in a shape": (lambda t: _params(t, _overflowing_shape),
                                  "not an MXNet .params file: implausible shape (4294967296, 4294967296)"),
    "MXNet name not UTF-8": (lambda t: _params(t, _name_not_utf8), "is not UTF-8 (byte 0xff)"),
}


@pytest.mark.parametrize("case", FATAL)
def test_fatal_input_is_one_line_before_any_work(tmp_path, case):
    make, message = FATAL[case]
    args = make(tmp_path)
    proc = run_tool(FEATURIZE, "--progress", "false", *args, tmp_path / "out", check=False)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if " INFO: " not in line]
    assert all(line.startswith("featurize.py: ") for line in lines), proc.stderr  # the problems, one a line
    assert any(message in line for line in lines), proc.stderr
    assert "Traceback" not in proc.stderr and "Exception" not in proc.stderr
    assert not (tmp_path / "out" / "feats.scp").exists()


def test_output_path_that_is_a_file_and_bad_pipe_timeout(tmp_path):
    data = _data(tmp_path)
    (tmp_path / "out").write_text("")
    proc = run_tool(FEATURIZE, data, tmp_path / "out", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"featurize.py: cannot write to {tmp_path}/out: exists and is not a directory")
    (tmp_path / "out3" / "conf").mkdir(parents=True)
    (tmp_path / "out3" / "data").write_text("")
    proc = run_tool(FEATURIZE, data, tmp_path / "out3", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        f"featurize.py: cannot write to {tmp_path}/out3/data: exists and is not a directory")
    proc = run_tool(FEATURIZE, "--model", "decoar", "--params", tmp_path, data, tmp_path / "out4", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        f"featurize.py: DeCoAR weights: {tmp_path} is a directory, not a file")
    for bad in ("0", "nan", "-5", "inf", "soon"):
        proc = run_tool(FEATURIZE, "--pipe-timeout", bad, data, tmp_path / "out2", check=False)
        assert proc.returncode == 2 and f"expected a number of seconds > 0, got '{bad}'" in proc.stderr


def _tree(root):
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(Path(root).rglob("*")) if f.is_file()}


def test_a_data_dir_inside_its_output_dir_is_refused_and_left_as_it_was(tmp_path):
    """The output dir's data/ is replaced whole, and its feats.scp, utt2num_frames and conf/
    written over: a data dir that is the output dir, or lies inside it, would be lost."""
    for data, out in ((tmp_path / "exp" / "data", tmp_path / "exp"),  # <out>/data: deleted before
                      (tmp_path / "d", tmp_path / "d"),  # the data dir's own feats.scp replaced
                      (tmp_path / "e" / "data" / "train", tmp_path / "e")):
        make_data_dir(data, {"a": golden_wav("spk1-utt1")}, utt2spk={"a": "s"})
        (data / "feats.scp").write_text("a /old/raw_fbank.1.ark:5\n")
        (data / "text").write_text("a hello\n")
        before = _tree(data)
        proc = run_tool(FEATURIZE, data, out, check=False)
        where = "is the output dir" if data == out else f"lies inside the output dir {out}'s data/"
        assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
            f"featurize.py: {data}: the data dir {where}, whose feats.scp, utt2num_frames, conf/ and "
            "data/ a run replaces: give an output dir outside the data dir (steps/featurize.sh updates "
            "a data dir in place, keeping a backup)")
        assert _tree(data) == before
    # a data dir elsewhere under the output dir is left alone (data/train into data/)
    data = make_data_dir(tmp_path / "f" / "train", {"a": golden_wav("spk1-utt1")}, utt2spk={"a": "s"})
    before = _tree(data)
    run_tool(FEATURIZE, data, tmp_path / "f")
    assert (tmp_path / "f" / "feats.scp").is_file() and _tree(data) == before
    # Kaldi's own place for features, <data>/data, is an output dir like any other
    data = make_data_dir(tmp_path / "k", {"a": golden_wav("spk1-utt1")}, utt2spk={"a": "s"})
    before = _tree(data)
    run_tool(FEATURIZE, data, data / "data")
    assert (data / "data" / "feats.scp").is_file() and (data / "data" / "data" / "feats.scp").is_file()
    assert {k: v for k, v in _tree(data).items() if not k.startswith("data/")} == before


def test_a_second_run_into_the_same_output_is_refused(tmp_path):
    from speech_reps.kaldi.lock import lock_output_dir

    data = _data(tmp_path)
    (tmp_path / "out").mkdir()
    held = lock_output_dir(tmp_path / "out", "feats")  # as the first run holds it
    proc = run_tool(FEATURIZE, data, tmp_path / "out", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        f"featurize.py: {tmp_path}/out: another run is writing feats.* into this directory (it holds "
        f"{tmp_path}/out/.feats.lock); wait for it to finish, or use another output dir")
    assert not (tmp_path / "out" / "feats.scp").exists()
    run_tool(FEATURIZE, "--name", "other", data, tmp_path / "out")  # another name: another lock
    held.release()
    run_tool(FEATURIZE, data, tmp_path / "out")  # the first run gone, the next one goes ahead
    assert (tmp_path / "out" / "feats.scp").is_file()


def test_disk_full_leaves_one_line_and_no_reader_behind(tmp_path, dither0):
    """ENOSPC (the archive on /dev/full): one line, and the readers stop at once rather than
    when a reference cycle is collected at exit (then a worker pool's shutdown printed an
    EBADF traceback)."""
    import gc
    import types

    from speech_reps.engine.job import Job
    from speech_reps.engine.run import featurize_data_dir

    # no bad utterance: the writer's error surfaces in the main loop, with the readers suspended
    wav = {f"u{i:03d}": golden_wav(["spk1-utt1", "spk2-utt1", "spk3-chirp"][i % 3]) for i in range(30)}
    data = make_data_dir(tmp_path / "data", wav, utt2spk={u: u for u in wav})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "feats.ark.tmp").symlink_to("/dev/full")
    gc.disable()  # as when no collection comes before exit
    try:
        with pytest.raises(OSError, match="No space left on device"):
            featurize_data_dir(Job(data, tmp_path / "out", model_options={"feature_config": dither0},
                               progress=False, num_workers=1, batch_frames=700))
        alive = [g.__name__ for g in gc.get_objects() if type(g) is types.GeneratorType and g.gi_frame is not None]
        assert not {"read_ahead", "read", "results", "stream"} & set(alive), alive
        assert not [t for t in threading.enumerate() if t.name == "read-ahead"]
    finally:
        gc.enable()
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    proc = subprocess.run([str(FEATURIZE), "--fbank-config", str(dither0), *ARGS, str(data), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        f"featurize.py: writing {tmp_path}/out: No space left on device; rerun the same command to resume")
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_a_table_we_only_copy_may_hold_any_bytes(tmp_path, dither0):
    """Kaldi is byte-oriented: a latin-1 `text` is copied to the output data dir as it is."""
    data = _data(tmp_path)
    (data / "text").write_bytes(b"a caf\xe9 cr\xe8me\n")
    run_tool(FEATURIZE, "--fbank-config", dither0, "--progress", "false", data, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "text").read_bytes() == b"a caf\xe9 cr\xe8me\n"


@pytest.mark.parametrize("args,rc,message", [
    (["--batch-frames", "0"], 2, "argument --batch-frames: expected a whole number >= 1, got '0'"),
    (["--num-workers", "-1"], 2, "argument --num-workers: expected a whole number >= 0, got '-1'"),
    (["--max-failed-frac", "nan"], 2, "argument --max-failed-frac: expected a number from 0 to 1, got 'nan'"),
    (["--channel", "-2"], 1, "featurize.py: --channel -2: expected a channel index from 0 (or -1: mono audio)"),
])
def test_command_line_numbers_are_checked_before_any_work(tmp_path, args, rc, message):
    proc = run_tool(FEATURIZE, *args, _data(tmp_path), tmp_path / "out", check=False)
    usage_error = f"featurize.py: {message} (see featurize.py --help)"  # argparse's, exit 2
    assert proc.returncode == rc and proc.stderr.strip().splitlines()[-1] == (usage_error if rc == 2 else message), \
        proc.stderr
    assert not (tmp_path / "out" / "feats.ark.tmp").exists()


def test_a_loader_worker_killed_stops_the_job_with_one_line(tmp_path, dither0):
    """A loader worker that dies (here killed by the command of its utterance's wav.scp line;
    in life the kernel's OOM killer) stops the job with one line naming the utterance being read
    and how to go on, not a traceback; the run then resumes."""
    wav = {"a": golden_wav("spk1-utt1"), "b": "kill -9 $PPID |", "c": golden_wav("spk2-utt1")}
    data = make_data_dir(tmp_path / "data", wav, utt2spk={u: u for u in wav})
    args = ["--fbank-config", str(dither0), "--num-workers", "1", *ARGS]
    proc = run_tool(FEATURIZE, *args, data, tmp_path / "out", check=False)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("featurize.py: a loader worker died (killed, or out of memory?) while utterance ")
    assert last.endswith("was being read; what was finished is kept: rerun the same command to resume")
    assert "Traceback" not in proc.stderr
    make_data_dir(tmp_path / "data", {"a": wav["a"], "b": golden_wav("spk3-short"), "c": wav["c"]},
                  utt2spk={u: u for u in wav})
    run_tool(FEATURIZE, *args, data, tmp_path / "out")
    assert sorted(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp"))) == ["a", "b", "c"]
