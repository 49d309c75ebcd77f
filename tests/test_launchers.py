"""utils/parallel/run.pl and slurm.pl read the command line as Kaldi's run.pl/queue.pl/slurm.pl do.

Every form a Kaldi recipe uses: options before and after JOB=1:N, JOB=n (one job), GridEngine
options (-l, -V, -pe <env> <n>, -q, -sync, -tc), JOB inside a word, a range into one log refused,
--max-jobs-run, --pick; Kaldi's log header/footer and exit status; Ctrl-C; running without the
virtual environment. (slurm.pl on a real cluster: tests/test_slurm.py.)
"""

import importlib.machinery
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import kaldiio
import pytest

from conftest import REPO, golden_data_dir, wait_for_logs

PARALLEL = REPO / "utils" / "parallel"
RUN_PL = PARALLEL / "run.pl"
SLURM_PL = PARALLEL / "slurm.pl"
ENV_PATH = f"{Path(sys.executable).parent}:{PARALLEL}:{os.environ['PATH']}"


def bash(script, cwd=None):
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, PATH=ENV_PATH))


def run_pl(tmp_path, *args):
    return subprocess.run([str(RUN_PL), *args], capture_output=True, text=True, cwd=tmp_path)


def files(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


def assert_log(path, command, output, code="code 0", threads=1):
    """A job log exactly as Kaldi's run.pl writes it (dates and seconds aside)."""
    lines = Path(path).read_text().splitlines()
    assert lines[0] == f"# {command}"
    assert lines[1].startswith("# Started at ") and lines[2] == "#"
    assert lines[3:-2] == output
    assert lines[-2].startswith("# Accounting: time=") and lines[-2].endswith(f" threads={threads}")
    assert lines[-1].startswith(f"# Ended ({code}) at ") and lines[-1].endswith(" seconds")


# (launcher arguments, {log: (command in its header, output lines, threads)})
SYNTAX_FORMS = {
    "range": (["JOB=1:3", "log/a.JOB.log", "echo", "job", "JOB"],
              {f"log/a.{j}.log": (f"echo job {j}", [f"job {j}"], 1) for j in (1, 2, 3)}),
    "single job JOB=3": (["JOB=3", "log/a.JOB.log", "echo", "job", "JOB"],
                         {"log/a.3.log": ("echo job 3", ["job 3"], 1)}),
    "JOB inside words": (["JOB=1:2", "log/train_JOB.log", "echo", "data/split2/JOB/x_JOB_y"],
                         {f"log/train_{j}.log": (f"echo data/split2/{j}/x_{j}_y", [f"data/split2/{j}/x_{j}_y"], 1)
                          for j in (1, 2)}),
    "options after the range": (["JOB=1:2", "--max-jobs-run", "1", "--mem", "2G", "log/b.JOB.log", "echo", "JOB"],
                                {f"log/b.{j}.log": (f"echo {j}", [str(j)], 1) for j in (1, 2)}),
    "options before and after": (["--mem", "2G", "JOB=1:2", "--num-threads", "4", "--gpu", "0",
                                  "log/c.JOB.log", "echo", "JOB"],
                                 {f"log/c.{j}.log": (f"echo {j}", [str(j)], 4) for j in (1, 2)}),
    "GridEngine options": (["-l", "mem_free=2G,ram_free=2G", "-V", "-pe", "smp", "4", "-q", "all.q", "JOB=1:2",
                            "-sync", "y", "-tc", "1", "log/d.JOB.log", "echo", "JOB"],
                           {f"log/d.{j}.log": (f"echo {j}", [str(j)], 4) for j in (1, 2)}),
    "queue.pl options": (["--config", "conf/queue.conf", "--time", "4:00:00", "--mem", "2G", "--gpu", "0",
                          "JOB=2:3", "exp/log/e.JOB.log", "echo", "JOB"],
                         {f"exp/log/e.{j}.log": (f"echo {j}", [str(j)], 1) for j in (2, 3)}),
    "another variable name": (["TASK=1:2", "log/f.TASK.log", "echo", "TASK", "JOB"],
                              {f"log/f.{j}.log": (f"echo {j} JOB", [f"{j} JOB"], 1) for j in (1, 2)}),
    "no job range, a pipe": (["log/one.log", "echo", "a b", "|", "tr", "a-z", "A-Z"],
                             {"log/one.log": ('echo "a b" | tr a-z A-Z', ["A B"], 1)}),
    "JOB=1:1 into one log": (["JOB=1:1", "log/one.log", "echo", "JOB"], {"log/one.log": ("echo 1", ["1"], 1)}),
}


@pytest.mark.parametrize("form", SYNTAX_FORMS)
def test_run_pl_reads_kaldi_syntax(tmp_path, form):
    args, logs = SYNTAX_FORMS[form]
    proc = run_pl(tmp_path, *args)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert files(tmp_path) == sorted(logs)  # nothing else: no file named "JOB=3", "--mem" or "-V"
    for log, (command, output, threads) in logs.items():
        assert_log(tmp_path / log, command, output, threads=threads)


REFUSED = {
    "range into one log": (["JOB=1:3", "log/one.log", "echo", "JOB"],
                           "run.pl: you are trying to run a parallel job but you are putting the output "
                           "into just one log file (log/one.log)"),
    "range from 0": (["JOB=0:3", "log/a.JOB.log", "true"],
                     "run.pl: invalid job range JOB=0:3, start must be strictly positive"),
    "reversed range": (["JOB=3:1", "log/a.JOB.log", "true"], "run.pl: invalid job range JOB=3:1"),
    "--max-jobs-run 0": (["--max-jobs-run", "0", "JOB=1:2", "log/a.JOB.log", "true"],
                         "run.pl: invalid option --max-jobs-run 0"),
    "bad --pick": (["--pick", "some", "JOB=1:2", "log/a.JOB.log", "true"],
                   "run.pl: --pick argument must be one of 'all', 'failed' or 'incomplete'"),
    "no command": (["JOB=1:2", "log/a.JOB.log"], "run.pl: expected [options] [JOB=1:N] <log-file> <command>"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_run_pl_refuses_what_kaldi_refuses(tmp_path, case):
    args, message = REFUSED[case]
    proc = run_pl(tmp_path, *args)
    assert proc.returncode == 1 and proc.stderr.startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr and files(tmp_path) == []


@pytest.mark.parametrize("case", ["range into one log", "range from 0", "reversed range", "no command"])
def test_slurm_pl_refuses_what_kaldi_refuses(tmp_path, case):
    args, message = REFUSED[case]
    proc = subprocess.run([str(SLURM_PL), *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith(message.replace("run.pl", "slurm.pl")), proc.stderr
    assert files(tmp_path) == []  # refused before anything is written or submitted


def test_run_pl_substitutes_job_and_reports_failures(tmp_path):
    proc = bash(f"{RUN_PL} JOB=1:3 {tmp_path}/log.JOB.log echo job JOB \\; [ JOB != 2 ]")
    assert proc.returncode == 1
    assert f"run.pl: job 2 failed (code 1), log is in {tmp_path}/log.2.log" in proc.stderr
    assert f"run.pl: 1 / 3 failed, log is in {tmp_path}/log.*.log" in proc.stderr  # Kaldi's summary
    log1 = (tmp_path / "log.1.log").read_text().splitlines()
    assert log1[0] == "# echo job 1 ; [ 1 != 2 ]" and log1[1].startswith("# Started at")
    assert log1[3] == "job 1" and log1[4].startswith("# Accounting: time=")
    assert log1[5].startswith("# Ended (code 0) at")
    assert (tmp_path / "log.2.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")
    assert bash(f"{RUN_PL} {tmp_path}/one.log echo 'a b' \\| tr a-z A-Z").returncode == 0
    assert "A B" in (tmp_path / "one.log").read_text()


def test_run_pl_exit_codes_and_signal_form(tmp_path):
    proc = run_pl(tmp_path, "log/plain.log", "exit", "3")
    assert proc.returncode == 1 and proc.stderr == "run.pl: job failed (code 3), log is in log/plain.log\n"
    assert_log(tmp_path / "log/plain.log", "exit 3", [], code="code 3")
    proc = run_pl(tmp_path, "JOB=1:2", "log/k.JOB.log", "[", "JOB", "=", "1", "]", "||", "kill", "-TERM", "$$")
    assert proc.returncode == 1
    assert "run.pl: job 2 failed (signal 15), log is in log/k.2.log" in proc.stderr
    assert_log(tmp_path / "log/k.1.log", "[ 1 = 1 ] || kill -TERM $$", [])
    assert_log(tmp_path / "log/k.2.log", "[ 2 = 1 ] || kill -TERM $$", [], code="code 0; signal 15")
    (tmp_path / "afile").write_text("")
    proc = run_pl(tmp_path, "JOB=1:2", "afile/l.JOB.log", "true")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "run.pl: job 2 failed (cannot write its log: File exists), log is in afile/l.2.log" in proc.stderr


@pytest.mark.parametrize("limit", [["--max-jobs-run", "1"], ["-tc", "1"], ["--max-jobs-run", "3", "-tc", "1"]])
def test_run_pl_max_jobs_run(tmp_path, limit):
    # each job holds a directory while it runs: two jobs at once would make one of them fail
    proc = run_pl(tmp_path, *limit, "JOB=1:4", "log/m.JOB.log",
                  "mkdir", "busy", "&&", "sleep", "0.2", "&&", "rmdir", "busy")
    assert proc.returncode == 0, proc.stderr + "".join(
        (tmp_path / f"log/m.{j}.log").read_text() for j in range(1, 5))
    proc = run_pl(tmp_path, "--max-jobs-run", "4", "JOB=1:4", "log/n.JOB.log",
                  "mkdir", "busy", "&&", "sleep", "1", "&&", "rmdir", "busy")
    assert proc.returncode == 1  # the same jobs, all at once, collide


def test_run_pl_pick(tmp_path):
    assert run_pl(tmp_path, "JOB=1:3", "log/p.JOB.log", "echo", "first", "JOB", ";", "[", "JOB", "!=", "2", "]").returncode == 1
    (tmp_path / "log/p.3.log").write_text("# echo first 3\n# Started at some time\n#\n")  # never ended
    before = (tmp_path / "log/p.1.log").read_text()
    proc = run_pl(tmp_path, "--pick", "incomplete", "JOB=1:3", "log/p.JOB.log", "echo", "second", "JOB")
    assert proc.returncode == 1 and "job 2 failed (code 1, not rerun with --pick incomplete)" in proc.stderr
    assert (tmp_path / "log/p.1.log").read_text() == before
    assert (tmp_path / "log/p.2.log").read_text().splitlines()[3] == "first 2"
    assert_log(tmp_path / "log/p.3.log", "echo second 3", ["second 3"])
    proc = run_pl(tmp_path, "--pick", "failed", "JOB=1:3", "log/p.JOB.log", "echo", "third", "JOB")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "log/p.1.log").read_text() == before
    assert_log(tmp_path / "log/p.2.log", "echo third 2", ["third 2"])
    assert_log(tmp_path / "log/p.3.log", "echo second 3", ["second 3"])


def test_run_pl_gpu_needs_a_gpu(tmp_path):
    proc = bash(f"CUDA_VISIBLE_DEVICES= {RUN_PL} --gpu 1 {tmp_path}/g.log true")
    assert proc.returncode == 1 and "--gpu 1: no GPU visible" in proc.stderr
    proc = bash(f"CUDA_VISIBLE_DEVICES=3,5 {RUN_PL} --gpu 1 JOB=1:3 {tmp_path}/g.JOB.log echo gpu '$CUDA_VISIBLE_DEVICES'")
    assert proc.returncode == 0
    assert [(tmp_path / f"g.{j}.log").read_text().splitlines()[3] for j in (1, 2, 3)] == ["gpu 3", "gpu 5", "gpu 3"]


def test_run_pl_ctrl_c_stops_the_jobs(tmp_path):
    # each job sets its trap, says it runs, then waits; on SIGINT the trap answers and exits 3
    proc = subprocess.Popen([str(RUN_PL), "JOB=1:3", "--max-jobs-run", "2", "log/s.JOB.log",
                             "trap", "echo got SIGINT JOB; exit 3", "INT", ";", "echo", "running", "JOB", ";",
                             "while", "true", ";", "do", "sleep", "0.1", ";", "done"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    logs = [tmp_path / f"log/s.{j}.log" for j in (1, 2)]
    wait_for_logs(logs, ["running 1", "running 2"], proc, 60)
    proc.send_signal(signal.SIGINT)
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130
    assert stderr == "run.pl: interrupted (SIGINT): 2 running job(s) stopped, 1 not started; logs: log/s.*.log\n"
    for j, log in zip((1, 2), logs):
        assert_log(log, f'trap "echo got SIGINT {j}; exit 3" INT ; echo running {j} ; while true ; do sleep 0.1 ; done',
                   [f"running {j}", f"got SIGINT {j}"], code="code 3")
    assert not (tmp_path / "log/s.3.log").exists()


# Interpreters that cannot import the toolkit: this one without site-packages, and the python3 a
# plain shell finds (what the launchers' #!/usr/bin/env python3 runs outside the venv).
STDLIB_ONLY_PYTHONS = [
    pytest.param([sys.executable, "-I", "-S"], id="python -I -S"),
    pytest.param([] if shutil.which("python3", path="/usr/bin:/bin") else None,
                 id="#!/usr/bin/env python3 with PATH=/usr/bin:/bin"),
]


@pytest.mark.parametrize("python", STDLIB_ONLY_PYTHONS)
def test_launchers_run_without_the_venv(tmp_path, python):
    if python is None:
        pytest.skip("no python3 in /usr/bin:/bin")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C"}
    probe = subprocess.run([*(python or ["python3"]), "-c", "import speech_reps"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert probe.returncode != 0, "this python3 has speech_reps installed: it cannot show the launchers need no venv"
    proc = subprocess.run([*python, str(RUN_PL), "JOB=1:2", "log/v.JOB.log", "echo", "JOB"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert_log(tmp_path / "log/v.2.log", "echo 2", ["2"])
    proc = subprocess.run([*python, str(SLURM_PL), "--no-such-option", "1", "JOB=1:2", "log/w.JOB.log", "true"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("slurm.pl: option --no-such-option is not in the slurm config\n"), proc.stderr


def test_featurize_sh_with_queue_pl_options(tmp_path, dither0):
    """featurize.sh calls its --cmd as every Kaldi script does ($cmd JOB=1:N <log> <command>), so a
    recipe's queue.pl option string works with run.pl unchanged."""
    data = golden_data_dir(tmp_path / "data")
    cmd = "run.pl -l mem_free=2G,ram_free=2G -V -pe smp 2 -q all.q --mem 2G --max-jobs-run 1"
    proc = bash(f"{REPO}/steps/featurize.sh --nj 2 --cmd '{cmd}' --fbank-config {dither0} "
                f"{data} {tmp_path}/log {tmp_path}/feats")
    assert proc.returncode == 0, proc.stderr
    assert len(dict(kaldiio.load_scp(str(data / "feats.scp")))) == 4
    logs = sorted((tmp_path / "log").glob("*.[12].log"))
    assert len(logs) == 2 and all(log.read_text().splitlines()[-2].endswith(" threads=2") for log in logs)
    assert not list((tmp_path / "log").glob("*JOB*")) and not (tmp_path / "log" / "-V").exists()


def load_slurm_pl():
    loader = importlib.machinery.SourceFileLoader("slurm_pl", str(SLURM_PL))
    spec = importlib.util.spec_from_loader("slurm_pl", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_slurm_pl_options_to_sbatch():
    """Kaldi's slurm.pl: --name value through the config's option lines; GridEngine's -pe and -tc read
    as --num-threads and --max-jobs-run, -V and -sync dropped; other raw options go to sbatch as they are."""
    slurm_pl = load_slurm_pl()
    from speech_reps.parallel import parse_job_args

    args = parse_job_args("slurm.pl", ["-V", "--mem", "2G", "JOB=1:4", "-pe", "smp", "4", "-p", "gpu", "-sync", "y",
                                       "-tc", "2", "--gpu", "1", "--time", "1:00:00", "log/x_JOB.log", "echo", "JOB"])
    given, config, max_jobs, raw = slurm_pl.parse_options(args.options)
    assert (given, config, max_jobs, raw) == ({"mem": "2G", "num_threads": "4", "gpu": "1", "time": "1:00:00"},
                                              None, 2, ["-p", "gpu"])
    command, options, defaults = slurm_pl.read_config((REPO / "conf" / "slurm.conf").read_text(), "slurm.conf")
    assert command == ["sbatch", "--export=ALL", "--ntasks-per-node=1"]
    assert slurm_pl.sbatch_args(options, {**defaults, **given}) == [
        "--gres=gpu:1", "--mem=2G", "--cpus-per-task=4", "--time=1:00:00"]
    assert slurm_pl.sbatch_args(options, {**defaults, "mem": "0", "num_threads": "1"}) == ["--cpus-per-task=1"]


def test_slurm_pl_config_lookup(tmp_path, monkeypatch):
    """As Kaldi's slurm.pl: --config, else the recipe's conf/slurm.conf, else (ours) the toolkit's."""
    slurm_pl = load_slurm_pl()
    monkeypatch.chdir(tmp_path)
    assert slurm_pl.config_file(None) == str(REPO / "conf" / "slurm.conf")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "slurm.conf").write_text("command sbatch\n")
    assert slurm_pl.config_file(None) == "conf/slurm.conf"
    (tmp_path / "my.conf").write_text("command sbatch\n")
    assert slurm_pl.config_file("my.conf") == "my.conf"
    with pytest.raises(slurm_pl.LauncherError, match="could not open config file missing.conf"):
        slurm_pl.config_file("missing.conf")


def test_slurm_pl_task_script(tmp_path, monkeypatch):
    """The batch script each array task runs: JOB replaced as run.pl does, Kaldi's log, the exit code."""
    slurm_pl = load_slurm_pl()
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "task.sh"
    script.write_text(slurm_pl.task_script('echo "a b" JOB_x | tr a-z A-Z ; [ JOB != 2 ]', "JOB", "log/t_JOB.log", 3))
    for task, code in ((1, 0), (2, 1)):
        proc = subprocess.run(["bash", str(script)], env=dict(os.environ, SLURM_ARRAY_TASK_ID=str(task)))
        assert proc.returncode == code
        assert_log(tmp_path / f"log/t_{task}.log", f'echo "a b" {task}_x | tr a-z A-Z ; [ {task} != 2 ]',
                   [f"A B {task}_X"], code=f"code {code}", threads=3)
