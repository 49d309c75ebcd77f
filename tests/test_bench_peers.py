"""``python -m bench --peers``: peers that are not installed are named as missing (the run goes
on), and an installed peer (the bench-peers venv of ``make bench-peers``) gives a real row.
(Speed itself is never asserted: docs/benchmarks.md holds the numbers.)"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from bench import peers
from bench.corpus import make_corpus

REPO = Path(__file__).resolve().parents[1]


def test_peers_not_installed_are_named_and_the_run_goes_on(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KALDI_ROOT"}
    env["BENCH_PEERS_PYTHON"] = str(tmp_path / "no-venv" / "bin" / "python")
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"  # no compute-fbank-feats on it
    proc = subprocess.run([sys.executable, "-m", "bench", "--models", "fbank", "--minutes", "0.1",
                           "--seed-style", "false", "--peers", "--work", str(tmp_path / "work")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    if shutil.which("compute-fbank-feats", path=env["PATH"]) is None:  # a system-wide Kaldi is a peer
        assert "| Kaldi `compute-fbank-feats` | not found: set KALDI_ROOT |" in out
    assert "| lhotse `Fbank` | not installed: make bench-peers |" in out
    ours = re.search(r"\| ours \(the engine row above\) \| ([\d.]+) \| ([\d,.]+) \|", out)
    assert ours and float(ours.group(1)) > 0, out


def test_peers_python_may_be_a_command_on_path(monkeypatch):
    """make gpu-check names the GPU host's interpreter as a command (python3): found on PATH."""
    monkeypatch.setenv("BENCH_PEERS_PYTHON", Path(sys.executable).name)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    assert peers.peers_python() == Path(sys.executable) and peers.installed("json")


def test_transformers_peer_named_missing_without_the_venv(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_PEERS_PYTHON", str(tmp_path / "none"))
    assert peers.peers_for("hubert", "bfloat16") == [("Hugging Face `HubertModel`", "not installed: make bench-peers")]
    assert peers.peers_for("decoar", "float32") == []


@pytest.mark.skipif(not peers.installed("lhotse"), reason="no bench-peers venv with lhotse (make bench-peers)")
def test_lhotse_peer_row_on_the_same_audio(tmp_path):
    """lhotse's Fbank (snip_edges false: one frame per 10 ms, rounded) over the bench corpus, in
    the bench-peers venv, as a row against a given 'ours'."""
    data = make_corpus(tmp_path / "corpus", minutes=0.1, min_seconds=1, max_seconds=3)
    lengths = [sf.info(line.split()[1]).frames for line in (data / "wav.scp").read_text().splitlines()]
    expected = sum(int((n / 160) + 0.5) for n in lengths)
    audio = sum(lengths) / 16000
    result = peers.python_peer("bench.peer_lhotse", [], data, tmp_path / "lhotse")
    assert result["frames"] == expected and result["wall"] > 0 and result["rss"] > 0
    assert len(list((tmp_path / "lhotse").rglob("*.npy"))) == len(lengths)
    ours = {"process": 2.0, "frames": expected, "rss": 2**30}
    lines = peers.peer_rows("fbank", "float32", ours, data, audio, tmp_path)
    row = next(line for line in lines if line.startswith("| lhotse"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    wall, ratio = float(cells[1]), float(cells[5].strip("*x"))
    assert wall > 0 and ratio == pytest.approx(wall / 2.0, abs=0.03)  # the peer's time / ours
