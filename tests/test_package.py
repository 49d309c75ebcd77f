"""The package installs with a plain `pip install .` and imports without any framework."""

import shutil
import subprocess
import sys

import pytest

from conftest import REPO, golden_wav


def test_import_loads_no_framework():
    code = ("import sys, speech_reps, speech_reps.engine.run, speech_reps.cli, speech_reps.models.registry\n"
            "from speech_reps.models.registry import create\n"
            "create('fbank')\n"
            "heavy = [m for m in ('torch', 'tensorflow', 'mxnet', 'fairseq') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_plain_pip_install_works_without_the_source_tree(tmp_path):
    """A non-editable install into a bare folder builds the compiled kernels, finds its conf/
    and runs the console script."""
    src, target = tmp_path / "src", tmp_path / "site"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "speech_reps", "conf"):  # no stale build/
        if (REPO / name).is_dir():  # nor the checkout's compiled module: the install builds its own
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
        else:
            shutil.copy(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, cwd=tmp_path)
    assert (target / "speech_reps" / "conf" / "fbank.conf").is_file()
    for kernels in ("kaldi/_compress_kernels", "frontend/_fbank_kernels"):
        assert list((target / "speech_reps").glob(f"{kernels}*.so")), kernels
    code = ("import sys, speech_reps; print('loaded', speech_reps.__file__, file=sys.stderr)\n"
            "from speech_reps.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "featurize", "--in-wav", str(golden_wav("spk3-short")),
                           "--out-npy", str(tmp_path / "y.npy")],
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"loaded {target}/speech_reps/__init__.py" in proc.stderr
    assert "25 frames x 80 dims" in proc.stderr  # conf/fbank.conf's 80 bins were found
