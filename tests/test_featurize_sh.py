"""steps/featurize.sh, the multi-job path, as Kaldi users run it: equal to one featurize.py job;
reuse only of jobs whose inputs, options and code are unchanged; the data dir changed only
after every job succeeded (else left byte-identical); fatal errors on the console before any
job; every option of featurize.py; split by utterance; progress lines; Ctrl-C."""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from conftest import REPO, golden_data_dir, golden_wav, make_data_dir, run_tool, write_conf
from test_jobs import FEATURIZE_SH, bash

FEATURIZE = REPO / "steps" / "featurize.py"


def featurize_sh(*args, cwd=None):
    return bash(" ".join(shlex.quote(str(a)) for a in (FEATURIZE_SH, *args)), cwd=cwd)


def snapshot(root):
    """Every file under ``root`` (hidden ones too): {relative path: bytes}."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def jobs_name(feats, raw):
    """The one run's archive name in ``feats``: <raw>.<8 hex digits of its options and inputs>."""
    names = {p.name.rsplit(".", 2)[0] for p in Path(feats).glob(f"{raw}.*.*.ark")}
    assert len(names) == 1, names
    return names.pop()


def feats_of(scp):
    return {k: np.array(v) for k, v in kaldiio.load_scp(str(scp)).items()}


def test_equals_one_job_and_reuses_only_finished_jobs(tmp_path, dither0):
    data = golden_data_dir(tmp_path / "data")
    single = golden_data_dir(tmp_path / "single")
    run_tool(FEATURIZE, "--fbank-config", dither0, "--progress", "false", single, tmp_path / "one")
    args = ["--nj", 3, "--compress", "false", "--fbank-config", dither0, data, tmp_path / "log", tmp_path / "feats"]
    proc = featurize_sh(*args)
    assert proc.returncode == 0, proc.stderr
    assert "featurize.sh: featurized 4 of 4 utterances of" in proc.stderr
    ours, ref = feats_of(data / "feats.scp"), feats_of(tmp_path / "one" / "feats.scp")
    assert ours.keys() == ref.keys() and all(np.array_equal(ours[k], ref[k]) for k in ref)
    assert (data / "utt2num_frames").read_text() == (tmp_path / "one" / "utt2num_frames").read_text()
    assert (data / "frame_shift").read_text() == "0.01\n"
    assert (data / "conf" / "fbank.conf").read_text() == (tmp_path / "one" / "conf" / "fbank.conf").read_text()
    assert run_tool(REPO / "utils" / "validate_data_dir.py", data).returncode == 0
    assert not (data / "split3utt").exists() and (tmp_path / "log" / "split3utt" / "3" / "wav.scp").is_file()

    # a killed job (no .done): only that one is redone; the finished ones are reused
    feats = tmp_path / "feats"
    run = jobs_name(feats, "raw_fbank_data")
    (feats / f"{run}.2.done").unlink()
    before = {n: (feats / f"{run}.{n}.ark").stat().st_mtime_ns for n in (1, 3)}
    proc = featurize_sh(*args)
    assert proc.returncode == 0, proc.stderr
    assert {n: (feats / f"{run}.{n}.ark").stat().st_mtime_ns for n in (1, 3)} == before
    assert "reused" in (tmp_path / "log" / "featurize_data.1.log").read_text()
    assert "reused" not in (tmp_path / "log" / "featurize_data.2.log").read_text()
    assert (data / ".backup" / "feats.scp").is_file()
    assert feats_of(data / "feats.scp").keys() == ref.keys()

    # a finished job whose archive is gone (or written over) since: redone, not reused
    (feats / f"{run}.3.ark").unlink()
    proc = featurize_sh(*args)
    assert proc.returncode == 0, proc.stderr
    assert "reused" in (tmp_path / "log" / "featurize_data.1.log").read_text()
    assert "reused" not in (tmp_path / "log" / "featurize_data.3.log").read_text()
    ours = feats_of(data / "feats.scp")
    assert ours.keys() == ref.keys() and all(np.array_equal(ours[k], ref[k]) for k in ref)


def test_changed_inputs_and_options_are_redone(tmp_path):
    """Reuse is decided by the inputs (tables, audio files), the option values and the code."""
    audio = tmp_path / "audio"
    audio.mkdir()
    for u in ("spk1-utt1", "spk2-utt1", "spk3-chirp", "spk3-short"):
        (audio / f"{u}.wav").write_bytes(golden_wav(u).read_bytes())
    wavs = {"a1": audio / "spk1-utt1.wav", "a2": audio / "spk2-utt1.wav", "b1": audio / "spk3-chirp.wav",
            "b2": audio / "spk3-short.wav"}
    data = make_data_dir(tmp_path / "data", wavs, utt2spk={u: u[0] for u in wavs})
    conf = write_conf(tmp_path / "fbank.conf", "--num-mel-bins=80", "--dither=0")
    args = ["--nj", 2, "--compress", "false", "--fbank-config", conf, data, tmp_path / "log", tmp_path / "feats"]
    logs = [tmp_path / "log" / f"featurize_data.{n}.log" for n in (1, 2)]

    def run():
        proc = featurize_sh(*args)
        assert proc.returncode == 0, proc.stderr
        return feats_of(data / "feats.scp")

    first = run()
    assert first["a1"].shape == (318, 80)

    # the audio behind a key changed: wav.scp points elsewhere
    (data / "wav.scp").write_text((data / "wav.scp").read_text().replace("spk1-utt1.wav", "spk3-short.wav"))
    second = run()
    assert np.array_equal(second["a1"], first["b2"])

    # an utterance was removed from the data dir
    for name in ("wav.scp", "utt2spk"):
        (data / name).write_text("".join(line for line in open(data / name) if not line.startswith("b1 ")))
    assert set(run()) == {"a1", "a2", "b2"}
    assert run_tool(REPO / "utils" / "validate_data_dir.py", data).returncode == 0

    # the conf file edited in place (same path): its values count, not its name
    write_conf(conf, "--num-mel-bins=40", "--dither=0")
    assert all(m.shape[1] == 40 for m in run().values())

    # nothing changed: both jobs reused; a rewritten recording (new time): a run of another name,
    # whose jobs never write into the archives the data dir points at until it has succeeded
    run()
    assert all("reused" in log.read_text() for log in logs)
    names = {p.name.rsplit(".", 2)[0] for p in (tmp_path / "feats").glob("raw_fbank_data.*.ark")}
    os.utime(audio / "spk2-utt1.wav", ns=(1, 1))
    run()
    assert not any("reused" in log.read_text() for log in logs)
    assert len({p.name.rsplit(".", 2)[0] for p in (tmp_path / "feats").glob("raw_fbank_data.*.ark")} - names) == 1


def test_a_failed_rerun_with_other_options_leaves_the_features_the_data_dir_points_at(tmp_path, dither0):
    """A run's jobs write archives named by its options and inputs: a rerun with other options
    that fails never wrote into the archives the data dir's feats.scp points at (the same name
    was overwritten in place, and the unchanged feats.scp then read another run's bytes)."""
    data = golden_data_dir(tmp_path / "data")
    args = [data, tmp_path / "log", tmp_path / "feats"]
    assert featurize_sh("--nj", 2, "--fbank-config", dither0, *args).returncode == 0
    before, scp = feats_of(data / "feats.scp"), snapshot(data)
    forty = write_conf(tmp_path / "forty.conf", "--num-mel-bins=40", "--dither=0")
    (data / "wav.scp").write_text((data / "wav.scp").read_text().replace("spk3-short.wav", "gone.wav"))
    scp = snapshot(data)
    proc = featurize_sh("--nj", 2, "--fbank-config", forty, *args)  # 1 of 4 fails: more than 5%
    assert proc.returncode == 1 and "featurize.sh: " in proc.stderr
    assert snapshot(data) == scp
    after = feats_of(data / "feats.scp")
    assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in before)
    assert len({p.name.rsplit(".", 2)[0] for p in (tmp_path / "feats").glob("raw_fbank_data.*.ark")}) == 2


def test_a_supplied_file_redoes_its_failed_utterance(tmp_path, dither0):
    missing = tmp_path / "later.wav"
    wavs = {f"u{i}": golden_wav("spk3-short") for i in range(3)}
    wavs["u3"] = missing
    data = make_data_dir(tmp_path / "data", wavs, utt2spk={u: u for u in wavs})
    args = ["--nj", 2, "--max-failed-frac", 0.5, "--fbank-config", dither0, data, tmp_path / "log", tmp_path / "feats"]
    proc = featurize_sh(*args)
    assert proc.returncode == 0, proc.stderr
    assert f"u3 file not found: {missing}" in (tmp_path / "log" / "failed").read_text()
    missing.write_bytes(golden_wav("spk1-utt1").read_bytes())
    proc = featurize_sh(*args)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "log" / "failed").read_text() == ""
    assert feats_of(data / "feats.scp")["u3"].shape == (318, 80)


def test_too_many_failures_leave_the_data_dir_as_it_was(tmp_path):
    utts = {f"u{i:02d}": golden_wav("spk3-short") for i in range(10)}
    utts["u03"] = "false |"
    data = make_data_dir(tmp_path / "data", utts, utt2spk={u: u for u in utts})
    (data / "feats.scp").write_text("u00 /old/feats.ark:10\n")  # the user's own features
    before = snapshot(data)
    for run in range(2):  # a second failed run must not lose the user's feats.scp either
        proc = featurize_sh("--nj", 2, data, tmp_path / "log", tmp_path / "feats")
        if run == 0:
            assert "utterance u03 (false |): command exited with code 1" in \
                (tmp_path / "log" / "featurize_data.1.log").read_text()
        assert proc.returncode == 1
        assert "only 9 of 10 utterances were featurized (less than 95%); failed, e.g.:\nfeaturize.sh: u03" in proc.stderr
        assert "the data dir is unchanged" in proc.stderr
        assert snapshot(data) == before
    assert (tmp_path / "log" / "failed").read_text() == "u03 command exited with code 1\n"


def test_a_failed_job_stops_the_run_and_says_why(tmp_path):
    """Job 2 is killed (its audio pipe kills it, as the OOM killer would): featurize.sh names it
    and exits 1 without touching the data dir (as make_fbank.sh stops on a failed job)."""
    utts = {"a1": golden_wav("spk3-short"), "a2": golden_wav("spk3-short"), "z1": "kill -9 $PPID |",
            "z2": golden_wav("spk3-short")}
    data = make_data_dir(tmp_path / "data", utts, utt2spk={u: u for u in utts})
    (data / "feats.scp").write_text("a1 /old/feats.ark:10\n")
    before = snapshot(data)
    proc = featurize_sh("--nj", 2, "--num-workers", 0, data, tmp_path / "log", tmp_path / "feats")
    assert proc.returncode == 1
    assert "featurize.sh: job 2 failed: no error line (killed?) " \
           f"(log: {tmp_path}/log/featurize_data.2.log)" in proc.stderr, proc.stderr
    assert f"featurize.sh: {data} is unchanged" in proc.stderr
    assert snapshot(data) == before


def test_options_named_like_the_parser_s_variables(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(f"name=a; value=b; origin=c\n. {REPO}/utils/parse_options.sh\necho $name $value $origin\n")
    proc = bash(f"bash {script} --name x --value y --origin z")
    assert proc.returncode == 0 and proc.stdout == "x y z\n", proc.stderr


@pytest.mark.parametrize("args,error", [
    (["--model", "nope"], "featurize.py: argument --model: invalid choice: 'nope'"),
    (["--fbank-config", "BADCONF"], "--no-such-option"),
    (["--model", "decoar", "--params", "/nonexistent/decoar.params"], "DeCoAR weights not found: /nonexistent/decoar.params"),
    (["--layer", "3"], "featurize.py: model fbank does not take --layer"),
    (["--nj", 9], "cannot split 4 utterances into 9 parts"),
    (["--nj", "abc"], "featurize.sh: --nj abc: expected a positive number of jobs"),
    (["--nj", "1.5"], "featurize.sh: --nj 1.5: expected a positive number of jobs"),
    (["--nj", "04"], "featurize.sh: --nj 04: expected a positive number of jobs"),
    (["--max-failed-frac", "nan"], "featurize.sh: --max-failed-frac nan: expected a fraction from 0 to 1"),
    (["--stage", "x"], "featurize.sh: --stage x: expected 0, 1 or 2"),
    (["--max-failed-frac", "abc"], "featurize.sh: --max-failed-frac abc: expected a fraction from 0 to 1"),
    (["--max-failed-frac", "1.5"], "featurize.sh: --max-failed-frac 1.5: expected a fraction from 0 to 1"),
    (["--log-interval", "0"], "featurize.sh: --log-interval 0: expected a number of seconds > 0"),
    (["--name", "../x"], "featurize.py: --name 'raw_fbank_../x': expected a file name (no '/', no spaces)"),
    (["--per-utt", "true", "--cmvn", "spk"], "featurize.sh: --per-utt true with --cmvn spk: a speaker's statistics "
                                             "need all of its utterances in one job"),
])
def test_fatal_errors_on_the_console_before_any_job(tmp_path, args, error):
    data = golden_data_dir(tmp_path / "data")
    bad = write_conf(tmp_path / "bad.conf", "--no-such-option=1")
    args = [bad if a == "BADCONF" else a for a in args]
    proc = featurize_sh(*args, data, tmp_path / "log", tmp_path / "feats")
    assert proc.returncode == 1 and error in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not list((tmp_path / "log").glob("featurize_*.log"))
    assert sorted(p.name for p in data.iterdir()) == ["utt2spk", "wav.scp"]


def test_a_data_dir_that_cannot_take_the_features_is_one_line_and_left_as_it_was(tmp_path, dither0):
    """Stage 2 fails after the jobs' work (here a file where .backup/ or conf/ go): one line, no
    traceback, and nothing of the data dir changed (the renames come after every check)."""
    for blocker in (".backup", "conf"):
        data = golden_data_dir(tmp_path / blocker / "data")
        (data / "feats.scp").write_text("spk1-utt1 /old/raw.1.ark:10\n")
        (data / blocker).write_text("in the way\n")
        before = snapshot(data)
        proc = featurize_sh("--fbank-config", dither0, "--nj", 2, data, tmp_path / blocker / "log",
                            tmp_path / blocker / "feats")
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == (
            f"featurize.sh: cannot write {data}/{blocker}: exists and is not a directory")
        assert snapshot(data) == before


def test_unwritable_feature_dir_is_a_console_error(tmp_path):
    data = golden_data_dir(tmp_path / "data")
    (tmp_path / "afile").write_text("")
    proc = featurize_sh(data, tmp_path / "log", tmp_path / "afile" / "feats")
    assert proc.returncode == 1 and "cannot create" in proc.stderr and "afile/feats" in proc.stderr


def test_every_featurize_py_option_is_accepted(tmp_path):
    names = run_tool(FEATURIZE, "--option-names").stdout.split()
    assert {"allow_resample", "pool", "channel", "trim_silence", "device", "max_failed_frac", "name"} <= set(names)
    usage = featurize_sh("--help").stderr
    for name in names:
        assert f"--{name.replace('_', '-')} " in usage, name
    data = golden_data_dir(tmp_path / "data")
    proc = featurize_sh("--check-only", "true", "--model", "ge2e", "--trim-silence", "false", "--device", "cpu",
                        "--dtype", "float32", "--allow-resample", "true", "--channel", 0, "--max-failed-frac", 0.2,
                        "--name", "x", "--pool", "mean", "--batch-frames", 5000, "--num-workers", 0,
                        "--write-data-dir", "false", "--progress", "false", "--log-interval", 5, data)
    assert proc.returncode == 0, proc.stderr
    assert f"featurize.sh: {data}: checks passed" in proc.stdout
    # --gpu is for the jobs, which a GPU launcher runs where the GPUs are: checked here on the CPU
    proc = featurize_sh("--check-only", "true", "--model", "ge2e", "--gpu", 0, data)
    assert proc.returncode == 0, proc.stderr


def test_pool_mean_over_jobs_is_extract_xvectors(tmp_path, dither0):
    """--pool mean in 3 jobs: xvector.scp of every utterance, speaker means over all jobs, plain
    (never compressed) vectors; equal to one featurize.py run."""
    data = golden_data_dir(tmp_path / "data")
    single = golden_data_dir(tmp_path / "single")
    run_tool(FEATURIZE, "--fbank-config", dither0, "--pool", "mean", "--progress", "false", single, tmp_path / "one")
    proc = featurize_sh("--nj", 3, "--pool", "mean", "--fbank-config", dither0, data, tmp_path / "log",
                        tmp_path / "xvectors")
    assert proc.returncode == 0, proc.stderr
    out, one = tmp_path / "xvectors", tmp_path / "one"
    for name in ("xvector.scp", "spk_xvector.scp"):
        ours, ref = feats_of(out / name), feats_of(one / name)
        assert ours.keys() == ref.keys() and all(np.array_equal(ours[k], ref[k]) for k in ref), name
    assert (out / "num_utts.ark").read_text() == (one / "num_utts.ark").read_text() == "spk1 1\nspk2 1\nspk3 2\n"
    with open(out / f"{jobs_name(out, 'raw_fbank_data')}.1.ark", "rb") as f:
        assert b"CM" not in f.read()[:64]  # a plain float vector ("FV"), as extract_xvectors writes
    assert not (data / "feats.scp").exists()


def test_split_by_utterance_unless_speaker_cmvn(tmp_path, dither0):
    data = golden_data_dir(tmp_path / "data")  # 3 speakers, 4 utterances
    proc = featurize_sh("--nj", 4, "--fbank-config", dither0, data, tmp_path / "log", tmp_path / "feats")
    assert proc.returncode == 0, proc.stderr
    proc = featurize_sh("--nj", 4, "--cmvn", "spk", "--fbank-config", dither0, data, tmp_path / "log2", tmp_path / "feats2")
    assert proc.returncode == 1 and "cannot split 3 speakers into 4 parts" in proc.stderr
    single = golden_data_dir(tmp_path / "single")
    run_tool(FEATURIZE, "--cmvn", "spk", "--fbank-config", dither0, "--progress", "false", single, tmp_path / "one")
    proc = featurize_sh("--nj", 2, "--cmvn", "spk", "--compress", "false", "--fbank-config", dither0, data,
                        tmp_path / "log3", tmp_path / "feats3")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "log3" / "split2" / "1" / "spk2utt").read_text() == "spk1 spk1-utt1\nspk2 spk2-utt1\n"
    ours, ref = feats_of(data / "feats.scp"), feats_of(tmp_path / "one" / "feats.scp")
    assert all(np.allclose(ours[k], ref[k], atol=1e-5) for k in ref)


def test_a_zero_length_segment_is_named_not_fatal(tmp_path, dither0):
    data = make_data_dir(tmp_path / "data", {"rec": golden_wav("spk1-utt1")},
                         segments="s1 rec 0.0 1.0\ns2 rec 1.0 1.0\ns3 rec 1.5 2.5\n",
                         utt2spk="s1 rec\ns2 rec\ns3 rec\n")
    proc = featurize_sh("--nj", 3, "--max-failed-frac", 0.5, "--fbank-config", dither0, data,
                        tmp_path / "log", tmp_path / "feats")
    assert proc.returncode == 0, proc.stderr
    assert set(feats_of(data / "feats.scp")) == {"s1", "s3"}
    assert (tmp_path / "log" / "failed").read_text().startswith("s2 ")


def test_two_data_dirs_of_one_name_never_share_archives(tmp_path, dither0):
    a, b = golden_data_dir(tmp_path / "a" / "train"), golden_data_dir(tmp_path / "b" / "train")
    feats = tmp_path / "feats"
    assert featurize_sh("--nj", 2, "--fbank-config", dither0, a, tmp_path / "la", feats).returncode == 0
    proc = featurize_sh("--nj", 2, "--fbank-config", dither0, b, tmp_path / "lb", feats)
    assert proc.returncode == 1
    assert (f"featurize.sh: {feats} already holds the archives raw_fbank_train.* of the data dir {a}; "
            "give this one another name (--name) or another <feat-dir>") in proc.stderr
    proc = featurize_sh("--nj", 2, "--name", "train_b", "--fbank-config", dither0, b, tmp_path / "lb", feats)
    assert proc.returncode == 0, proc.stderr
    assert f"{jobs_name(feats, 'raw_fbank_train_b')}.1.ark" in (b / "feats.scp").read_text()
    assert feats_of(a / "feats.scp").keys() == feats_of(b / "feats.scp").keys()


def as_in_a_terminal():
    """Ctrl-C's default action in the child: a run started in the background (``make test &``)
    hands its children SIGINT ignored, and an ignored signal cannot be caught."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def slow_data_dir(root, n, delay):
    # distinct commands: one recording read by consecutive utterances is read once
    wav = {f"u{i:02d}": f"sleep {delay}; cat {golden_wav('spk3-short')}; true {i} |" for i in range(n)}
    return make_data_dir(root, wav, utt2spk={u: u for u in wav})


def test_progress_lines_in_job_logs_and_on_the_console(tmp_path, dither0):
    data = slow_data_dir(tmp_path / "data", 8, 0.3)
    proc = featurize_sh("--nj", 2, "--log-interval", 0.5, "--batch-frames", 100, "--fbank-config", dither0, data,
                        tmp_path / "log", tmp_path / "feats")
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "log" / "featurize_data.1.log").read_text()
    assert " of 4 utterances (" in log and "h of audio" in log and "x real time, ETA " in log
    assert "featurize.sh: progress: " in proc.stderr and " of 8 utterances (" in proc.stderr


def test_ctrl_c_is_one_line_and_the_resume_counts_all_audio(tmp_path, dither0):
    data = slow_data_dir(tmp_path / "data", 60, 0.1)  # more than the bucketer's pool: still reading when stopped
    run_tool(FEATURIZE, "--fbank-config", dither0, "--progress", "false", data, tmp_path / "clean")
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    cmd = [str(FEATURIZE), "--fbank-config", str(dither0), "--batch-frames", "100", "--progress", "false",
           str(data), str(tmp_path / "out")]
    journal = tmp_path / "out" / "feats.ark.journal"
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=as_in_a_terminal)
    while proc.poll() is None and time.time() < started + 60 and not (
            journal.exists() and len(journal.read_text().splitlines()) > 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == \
        "featurize.py: interrupted; what was finished is kept: rerun the same command to resume"
    final = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert "resuming:" in final.stderr
    clean_summary = [line for line in run_tool(FEATURIZE, "--fbank-config", dither0, "--progress", "false", data,
                                               tmp_path / "clean2").stderr.splitlines() if line.startswith("done ")]
    assert [line for line in final.stderr.splitlines() if line.startswith("done ")] == clean_summary
    assert (tmp_path / "out" / "feats.ark").read_bytes() == (tmp_path / "clean" / "feats.ark").read_bytes()


def test_a_recipe_dir_works_as_kaldi_users_type(tmp_path):
    recipe = REPO / "egs" / "mini"
    for link in ("steps", "utils"):
        assert (recipe / link).is_symlink() and (recipe / link).resolve() == REPO / link
    proc = bash(". ./path.sh && steps/featurize.py --help && utils/split_data.sh --help", cwd=recipe)
    assert proc.returncode == 0 and "usage: featurize.py" in proc.stdout, proc.stderr


def test_a_failed_download_leaves_no_artifacts_dir(tmp_path):
    artifacts = tmp_path / "artifacts"
    proc = bash(f"{REPO}/utils/download_models.sh --artifacts {artifacts} --url http://127.0.0.1:9/x wav2vec")
    assert proc.returncode == 1 and "download_models.sh: http://127.0.0.1:9/x" in proc.stderr
    assert not artifacts.exists()


def test_ctrl_c_on_featurize_sh_stops_every_job_and_leaves_the_data_dir(tmp_path):
    data = slow_data_dir(tmp_path / "data", 12, 1.0)
    before = snapshot(data)
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{REPO / 'utils' / 'parallel'}:{os.environ['PATH']}")
    proc = subprocess.Popen(["bash", str(FEATURIZE_SH), "--nj", "2", str(data), str(tmp_path / "log"),
                             str(tmp_path / "feats")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True, preexec_fn=as_in_a_terminal)
    log = tmp_path / "log" / "featurize_data.2.log"
    started = time.time()
    while time.time() < started + 60 and not (log.exists() and "INFO: featurize.py" in log.read_text()):
        time.sleep(0.1)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == f"{FEATURIZE_SH}: interrupted; {data} is unchanged; rerun the same command to resume"
    assert "featurize.py: interrupted;" in log.read_text() and "# Ended (code 130)" in log.read_text()
    assert snapshot(data) == before


def test_a_layer_sweep_gives_one_data_dir_per_layer(tmp_path):
    """--layer 2,0 in 2 jobs: <data>_layer2 and <data>_layer0, each equal to featurize.py --layer N."""
    from fairseq_files import wav2vec2_checkpoint

    params = wav2vec2_checkpoint(tmp_path / "w2v2.pt")
    data = golden_data_dir(tmp_path / "d" / "train")
    before = snapshot(data)
    proc = featurize_sh("--nj", 2, "--model", "wav2vec2", "--params", params, "--layer", "2,0", "--compress", "false",
                        data, tmp_path / "log", tmp_path / "feats")
    assert proc.returncode == 0, proc.stderr
    assert snapshot(data) == before  # the input data dir holds no layer's features
    for layer in (2, 0):
        one = tmp_path / f"one{layer}"
        run_tool(FEATURIZE, "--model", "wav2vec2", "--params", params, "--layer", layer, "--progress", "false",
                 golden_data_dir(tmp_path / f"single{layer}"), one)
        target = tmp_path / "d" / f"train_layer{layer}"
        ours, ref = feats_of(target / "feats.scp"), feats_of(one / "feats.scp")
        assert ours.keys() == ref.keys() and all(np.array_equal(ours[k], ref[k]) for k in ref)
        assert (target / "frame_shift").read_text() == "0.02\n"
        assert f"layer: {layer}" in (target / "conf" / "featurize.yaml").read_text()
        assert (target / "utt2spk").read_text() == (data / "utt2spk").read_text()
        assert run_tool(REPO / "utils" / "validate_data_dir.py", target).returncode == 0


def test_a_second_featurize_sh_with_the_same_log_dir_is_refused_before_it_splits(tmp_path):
    """It would split the data dir again under the running jobs and truncate their logs."""
    data = slow_data_dir(tmp_path / "data", 16, 1.0)  # 8 s a job: the second run's check takes seconds
    args = ["--nj", 2, data, tmp_path / "log", tmp_path / "feats"]
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{REPO / 'utils' / 'parallel'}:{os.environ['PATH']}")
    first = subprocess.Popen(["bash", str(FEATURIZE_SH), *map(str, args)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    log = tmp_path / "log" / "featurize_data.1.log"
    started = time.time()
    while time.time() < started + 60 and not (log.exists() and "INFO: featurize.py" in log.read_text()):
        time.sleep(0.1)
    split = snapshot(tmp_path / "log" / "split2utt")
    proc = featurize_sh(*args)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        f"{FEATURIZE_SH}: {tmp_path}/log: another featurize.sh is running with this log dir (it holds "
        f"{tmp_path}/log/.featurize.lock); wait for it, or use another log dir"), proc.stderr
    other = slow_data_dir(tmp_path / "other", 2, 0.1)  # another data dir: the same split dir, refused too
    assert featurize_sh("--nj", 2, other, tmp_path / "log", tmp_path / "feats2").returncode == 1
    assert snapshot(tmp_path / "log" / "split2utt") == split
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "featurize.sh: " not in log.read_text().splitlines()[0]
    assert featurize_sh(*args).returncode == 0  # the first one gone: the lock is free
