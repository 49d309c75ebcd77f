"""What users would run instead (``python -m bench --peers``): real Kaldi, lhotse, Hugging Face.

Each peer runs in its own process on the bench corpus, timed from here from start to exit (its
start-up included, as the toolkit's own rows with --peers are), and is compared with the
toolkit's default path as a ratio of times (ours / peer > 1: ours is faster).

- Kaldi ``compute-fbank-feats``: on PATH or under ``$KALDI_ROOT/src/featbin``.
- lhotse ``Fbank`` and Hugging Face ``Wav2Vec2Model`` / ``HubertModel``: in the bench-only venv
  that ``make bench-peers`` builds (.cache/bench-peers; another with ``BENCH_PEERS_PYTHON``),
  never in the toolkit's own.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS_PYTHON = REPO / ".cache" / "bench-peers" / "bin" / "python"
TRANSFORMER_MODELS = ("wav2vec2", "hubert")


def peers_python():
    """The peers' interpreter: $BENCH_PEERS_PYTHON (a path, or a command name found on PATH),
    else the bench-peers venv's."""
    chosen = os.environ.get("BENCH_PEERS_PYTHON")
    if chosen is None:
        return PEERS_PYTHON
    return Path(shutil.which(chosen) or chosen)


def kaldi_binary(name="compute-fbank-feats"):
    found = shutil.which(name)
    if found is None and os.environ.get("KALDI_ROOT"):
        candidate = Path(os.environ["KALDI_ROOT"]) / "src" / "featbin" / name
        found = str(candidate) if os.access(candidate, os.X_OK) else None
    return found


def installed(package):
    """Whether the bench-peers venv exists and imports ``package``."""
    python = peers_python()
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", f"import {package}"], capture_output=True).returncode == 0


def timed(cmd, env=None):
    """Run ``cmd``; (seconds from start to exit, peak RSS bytes, stdout) or None on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        print(f"bench: {' '.join(map(str, cmd[:4]))} ... failed:\n{stderr[-2000:]}")
        return None
    return wall, usage.ru_maxrss * 1024, stdout


def kaldi_fbank(data, out):
    """compute-fbank-feats with the toolkit's fbank options (dither 0) over ``data``/wav.scp."""
    import kaldiio

    from speech_reps.frontend import FeatureOptions

    binary = kaldi_binary()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    conf = out / "fbank.conf"
    conf.write_text(FeatureOptions.from_file("fbank", REPO / "conf" / "fbank.conf", {"dither": 0}).to_conf_text())
    result = timed([binary, f"--config={conf}", f"scp:{data}/wav.scp",
                    f"ark,scp:{out}/feats.ark,{out}/feats.scp"])
    if result is None:
        return None
    frames = sum(m.shape[0] for _, m in kaldiio.load_scp_sequential(f"{out}/feats.scp"))
    return {"wall": result[0], "rss": result[1], "frames": frames}


def python_peer(module, args, data, out):
    Path(out).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = timed([str(peers_python()), "-m", module, *args, str(data), str(out)], env=env)
    if result is None:
        return None
    inner = json.loads(result[2].strip().splitlines()[-1])
    return {"wall": result[0], "rss": result[1], "frames": inner["frames"]}


def peers_for(model, dtype, device="cpu"):
    """[(label, run(data, out) -> result, or the reason it is not run)] for ``model`` (the
    Hugging Face loops on ``device``; Kaldi and lhotse compute on the CPU)."""
    if model == "fbank":
        rows = []
        if kaldi_binary():
            rows.append(("Kaldi `compute-fbank-feats` (one process)", kaldi_fbank))
        else:
            rows.append(("Kaldi `compute-fbank-feats`", "not found: set KALDI_ROOT"))
        if installed("lhotse"):
            rows.append(("lhotse `Fbank`, `compute_and_store_features` (1 job, numpy files)",
                         lambda data, out: python_peer("bench.peer_lhotse", [], data, out)))
        else:
            rows.append(("lhotse `Fbank`", "not installed: make bench-peers"))
        return rows
    if model in TRANSFORMER_MODELS:
        name = "Wav2Vec2Model" if model == "wav2vec2" else "HubertModel"
        if not installed("transformers"):
            return [(f"Hugging Face `{name}`", "not installed: make bench-peers")]
        rows = []
        for batch, how in ((1, "batch 1"), (8, "length-sorted padded batches of 8")):
            args = ["--model", model, "--dtype", dtype, "--batch", str(batch), "--device", device]
            where = "" if device == "cpu" else f", on {device}"
            rows.append((f"Hugging Face `{name}`, {how}, {dtype}{where}",
                         lambda data, out, args=args: python_peer("bench.peer_transformers", args, data, out)))
        return rows
    return []


def peer_rows(model, dtype, ours, data, audio, tmp, device="cpu"):
    """Markdown lines: each peer of ``model`` against ``ours`` (the engine row of the same run)."""
    lines = ["", f"**{model} vs what users would run instead** (same audio; each its own process, "
                 "start-up included; ours / peer: time ratio, > 1 means ours is faster)", "",
             "| path | wall s | x real time | frames/s | peak RSS GB | ours / peer |", "|---|---|---|---|---|---|"]
    if ours is not None:
        lines.append(f"| ours (the engine row above) | {ours['process']:.1f} | {audio / ours['process']:,.1f} | "
                     f"{ours['frames'] / ours['process']:,.0f} | {ours['rss'] / 2**30:.2f} | 1.00x |")
    for i, (label, peer) in enumerate(peers_for(model, dtype, device)):
        if isinstance(peer, str):
            lines.append(f"| {label} | {peer} | | | | |")
            continue
        result = peer(data, Path(tmp) / f"{model}_peer{i}")
        if result is None:
            lines.append(f"| {label} | failed | | | | |")
            continue
        ratio = f"**{result['wall'] / ours['process']:.2f}x**" if ours is not None else "-"
        lines.append(f"| {label} | {result['wall']:.1f} | {audio / result['wall']:,.1f} | "
                     f"{result['frames'] / result['wall']:,.0f} | {result['rss'] / 2**30:.2f} | {ratio} |")
    return lines
