"""steps/featurize.sh on a real single-node Slurm cluster (127.0.0.1), against run.pl.

tests/slurm/slurm-local.sh installs (apt) and starts munge, slurmctld and slurmd for the test
and stops them after; it needs root, as CI has. The cluster's output must equal run.pl's byte
for byte.
"""

import os
import signal
import subprocess
import time

import pytest

from conftest import REPO, golden_data_dir, wait_for_logs
from test_jobs import FEATURIZE_SH, bash

SLURM_LOCAL = REPO / "tests" / "slurm" / "slurm-local.sh"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the Slurm test needs root (to install and start slurmctld/slurmd/munge)")
    state = tmp_path_factory.mktemp("slurm-state")
    env = dict(os.environ, SLURM_LOCAL_DIR=str(state), SLURM_LOCAL_NO_INSTALL="1")  # make sysdeps installs
    start = subprocess.run(["bash", str(SLURM_LOCAL), "start"], capture_output=True, text=True, env=env,
                           timeout=900)
    if start.returncode != 0:
        pytest.fail("could not start a local Slurm cluster:\n" + start.stderr[-3000:])
    yield
    subprocess.run(["bash", str(SLURM_LOCAL), "stop"], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_slurm_equals_run_pl(slurm, tmp_path, dither0):
    outputs = {}
    for launcher in ("run.pl", "slurm.pl"):
        data = golden_data_dir(tmp_path / launcher / "data")
        proc = bash(f"{FEATURIZE_SH} --nj 3 --cmd '{launcher}' --fbank-config {dither0} "
                    f"{data} {tmp_path}/{launcher}/log {tmp_path}/{launcher}/feats")
        assert proc.returncode == 0, proc.stderr
        feats = tmp_path / launcher / "feats"
        outputs[launcher] = {p.name: p.read_bytes() for p in sorted(feats.glob("raw_*.ark"))}
        outputs[launcher]["feats.scp"] = (data / "feats.scp").read_text().replace(str(feats), "FEATS").encode()
        outputs[launcher]["utt2num_frames"] = (data / "utt2num_frames").read_bytes()
        log = (tmp_path / launcher / "log" / "featurize_data.2.log").read_text().splitlines()
        assert log[0].startswith("# ") and "log/split3utt/2" in log[0] and log[1].startswith("# Started at")
        assert log[-1].startswith("# Ended (code 0) at") and log[-2].startswith("# Accounting: time=")
    assert len(outputs["run.pl"]) == 5
    assert outputs["slurm.pl"] == outputs["run.pl"]


@pytest.mark.slow
def test_slurm_pl_reports_failed_tasks(slurm, tmp_path):
    proc = bash(f"cd {tmp_path} && slurm.pl --config {REPO}/conf/slurm.conf --mem 100M --num-threads 1 "
                f"JOB=1:3 log/t.JOB.log echo task JOB \\; [ JOB != 2 ]")
    assert proc.returncode == 1
    assert "slurm.pl: job 2 failed (code 1), log is in log/t.2.log" in proc.stderr
    assert (tmp_path / "log" / "t.3.log").read_text().splitlines()[3] == "task 3"


@pytest.mark.slow
def test_slurm_pl_kaldi_syntax(slurm, tmp_path):
    """JOB=n (one task), options after it, GridEngine's -V/-pe/-sync, JOB inside a word."""
    proc = bash(f"cd {tmp_path} && slurm.pl -V JOB=2 --mem 100M -pe smp 1 -sync y log/t_JOB.log echo task_JOB")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "log").glob("*.log")) == ["t_2.log"]
    log = (tmp_path / "log" / "t_2.log").read_text().splitlines()
    assert log[0] == "# echo task_2" and log[3] == "task_2" and log[-2].endswith(" threads=1")
    assert log[-1].startswith("# Ended (code 0) at")


@pytest.mark.slow
def test_slurm_pl_ctrl_c_cancels_the_array(slurm, tmp_path):
    proc = subprocess.Popen(["bash", "-c", "exec slurm.pl JOB=1:2 log/s.JOB.log echo running JOB \\; sleep 600"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PATH=bash("echo $PATH").stdout.strip()))
    logs = [tmp_path / "log" / f"s.{j}.log" for j in (1, 2)]
    wait_for_logs(logs, ["running 1", "running 2"], proc, 120, "the tasks did not start", poll=0.2)
    proc.send_signal(signal.SIGINT)
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130
    assert stderr.startswith(f"slurm.pl: interrupted (SIGINT): cancelled the Slurm array s_JOB_log-{proc.pid}")
    deadline = time.monotonic() + 60
    while f"s_JOB_log-{proc.pid}" in subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, "the array is still queued after scancel"
        time.sleep(0.5)
