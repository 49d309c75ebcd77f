"""path.sh: steps/ and utils/ on PATH, .venv active, Kaldi's featbin when KALDI_ROOT is set."""

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
