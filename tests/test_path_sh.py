"""path.sh: steps/ and utils/ on PATH, .venv active, Kaldi's featbin when KALDI_ROOT is set; our launchers
never shadow a Kaldi run.pl already on PATH, and path.sh says which run.pl wins."""

import subprocess

from conftest import REPO


def source_path_sh(tmp_path, kaldi_root=None):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    if kaldi_root:
        env["KALDI_ROOT"] = str(kaldi_root)
    script = f". {REPO}/path.sh && command -v featurize.py validate_data_dir.py python && echo PATH=$PATH"
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path)


def test_path_sh_puts_tools_on_path(tmp_path):
    proc = source_path_sh(tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = proc.stdout.splitlines()
    assert found[0] == f"{REPO}/steps/featurize.py" and found[1] == f"{REPO}/utils/validate_data_dir.py"
    assert found[2] == f"{REPO}/.venv/bin/python"


def test_path_sh_adds_kaldi_featbin(tmp_path):
    (tmp_path / "kaldi" / "src" / "featbin").mkdir(parents=True)
    proc = source_path_sh(tmp_path, tmp_path / "kaldi")
    assert f"PATH={tmp_path}/kaldi/src/featbin:" in proc.stdout


def launchers_after_path_sh(tmp_path, path_before="", kaldi_root=None):
    """Which run.pl and slurm.pl a shell runs after sourcing path.sh, and what path.sh said."""
    env = {"PATH": f"{path_before}/usr/bin:/bin", "HOME": str(tmp_path)}
    if kaldi_root:
        env["KALDI_ROOT"] = str(kaldi_root)
    proc = subprocess.run(["bash", "-c", f"set -euo pipefail; . {REPO}/path.sh && command -v run.pl slurm.pl"],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines(), [line for line in proc.stderr.splitlines() if ".pl" in line]


def kaldi_utils(tmp_path):
    """A Kaldi tree's egs/wsj/s5/utils with its launchers (a recipe puts its utils/ on PATH)."""
    utils = tmp_path / "kaldi" / "egs" / "wsj" / "s5" / "utils"
    utils.mkdir(parents=True)
    for name in ("run.pl", "queue.pl"):
        (utils / name).write_text("#!/usr/bin/env perl\nexit 0;\n")
        (utils / name).chmod(0o755)
    return utils


def test_path_sh_uses_our_launchers_when_no_other(tmp_path):
    found, said = launchers_after_path_sh(tmp_path)
    assert found == [f"{REPO}/utils/parallel/run.pl", f"{REPO}/utils/parallel/slurm.pl"] and said == []


def test_path_sh_never_shadows_kaldis_run_pl(tmp_path):
    utils = kaldi_utils(tmp_path)
    found, said = launchers_after_path_sh(tmp_path, path_before=f"{utils}:", kaldi_root=tmp_path / "kaldi")
    assert found == [f"{utils}/run.pl", f"{REPO}/utils/parallel/slurm.pl"]
    assert said == [f"path.sh: run.pl is {utils}/run.pl (Kaldi's or your own, first on PATH); "
                    f"speech-reps' is {REPO}/utils/parallel/run.pl"]


def test_path_sh_says_which_run_pl_wins_with_kaldi_root(tmp_path):
    kaldi_utils(tmp_path)
    found, said = launchers_after_path_sh(tmp_path, kaldi_root=tmp_path / "kaldi")
    assert found == [f"{REPO}/utils/parallel/run.pl", f"{REPO}/utils/parallel/slurm.pl"]
    assert said == [f"path.sh: run.pl is speech-reps' ({REPO}/utils/parallel/run.pl): no other run.pl is on PATH; "
                    f"Kaldi's is {tmp_path}/kaldi/egs/wsj/s5/utils/run.pl"]
