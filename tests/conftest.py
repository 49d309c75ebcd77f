import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "kaldi_golden"
GOLDEN_UTTS = ["spk1-utt1", "spk2-utt1", "spk3-chirp", "spk3-short"]
SPEECH_UTTS = ["spk1-utt1", "spk2-utt1"]


def golden_wav(utt):
    return GOLDEN / "wav" / f"{utt}.wav"


def golden_wave(utt):
    """Samples of a golden wav at Kaldi's int16 scale (float32)."""
    x, _ = sf.read(golden_wav(utt), dtype="int16")
    return x.astype(np.float32)


def golden_ark(name):
    return dict(kaldiio.load_ark(str(GOLDEN / name)))


def write_conf(path, *lines):
    Path(path).write_text("".join(line + "\n" for line in lines))
    return Path(path)


def make_data_dir(root, wav_scp, utt2spk=None, segments=None, spk2utt=None, extra=None):
    """A Kaldi data dir from {key: rxfile} and optional tables (dicts or raw text)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)

    def put(name, table):
        if table is None:
            return
        text = table if isinstance(table, str) else "".join(f"{k} {v}\n" for k, v in table.items())
        (root / name).write_text(text)

    put("wav.scp", wav_scp)
    put("utt2spk", utt2spk)
    put("segments", segments)
    put("spk2utt", spk2utt)
    for name, table in (extra or {}).items():
        put(name, table)
    return root


def golden_data_dir(root):
    """A data dir over the four golden wavs, speakers spk1..spk3."""
    utts = GOLDEN_UTTS
    return make_data_dir(root, {u: golden_wav(u) for u in utts},
                         utt2spk={u: u.split("-")[0] for u in utts})


def kaldi_binary(name):
    return shutil.which(name) or (
        os.environ.get("KALDI_ROOT") and shutil.which(name, path=f"{os.environ['KALDI_ROOT']}/src/featbin"))


def run_tool(*args, check=True, cwd=None):
    """Run a repo script or console entry with this venv's Python on PATH."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def dither0(tmp_path):
    """A Kaldi fbank conf with 80 bins and no dither (deterministic, like the golden files)."""
    return write_conf(tmp_path / "fbank80.conf", "--num-mel-bins=80", "--dither=0  # golden files")


def wait_for_logs(logs, lines, proc, timeout, what="the jobs did not start", poll=0.05):
    """Until each log holds its line of ``lines`` (its job runs: a whole line of output, never the
    log's header, which names the command); fails when ``proc`` ended or time ran out."""
    deadline = time.monotonic() + timeout
    while not all(log.is_file() and line in log.read_text().splitlines() for log, line in zip(logs, lines)):
        assert time.monotonic() < deadline and proc.poll() is None, what
        time.sleep(poll)


def parity_python(script, what):
    """The python of a parity venv that tests/parity/<script> builds once (cached); the test
    fails, never skips, when it cannot be built."""
    proc = subprocess.run(["bash", str(REPO / "tests" / "parity" / script)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"{what} parity venv could not be built:\n" + proc.stderr[-2000:])
    return proc.stdout.strip().splitlines()[-1]


def _no_cuda_reason():
    """Why the tests marked gpu cannot run here, or None when torch sees a CUDA GPU."""
    try:
        import torch
    except ImportError:
        return "needs a CUDA GPU: torch is not installed"
    if torch.cuda.is_available():
        return None
    build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
    return f"needs a CUDA GPU: torch {torch.__version__} ({build}) sees none; make gpu-check runs these on a GPU host"


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu (tests/gpu) are skipped, with the reason, where torch sees no CUDA GPU:
    the suite's only skip."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    reason = _no_cuda_reason() if gpu_items else None
    for item in gpu_items if reason else ():
        item.add_marker(pytest.mark.skip(reason=reason))
