"""steps/featurize.sh on a real single-node Slurm cluster (127.0.0.1), against run.pl.

tests/slurm/slurm-local.sh installs (apt) and starts munge, slurmctld and slurmd for the test
and stops them after; it needs root, as CI has. The cluster's output must equal run.pl's byte
for byte.
"""

import os
import subprocess

import pytest

from conftest import REPO, golden_data_dir
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
        assert log[0].startswith("# ") and "data/split3/2" in log[0] and log[1].startswith("# Started at")
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
