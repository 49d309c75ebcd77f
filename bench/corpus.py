"""The benchmark workload: a Kaldi data dir of real-speech-like audio of mixed lengths.

Real speech (the golden utterances shipped in tests/data) cut into random pieces, each with its
own gain, joined to utterances of uniformly random length (1-20 s by default), with a little
noise so no two are the same. Deterministic for a given seed and size; written once and reused.
"""

from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SPEECH = [REPO / "tests" / "data" / "kaldi_golden" / "wav" / f"{u}.wav" for u in ("spk1-utt1", "spk2-utt1")]
RATE = 16000


def make_corpus(root, minutes, min_seconds=1.0, max_seconds=20.0, seed=0):
    """``root``/data: wav.scp, utt2spk, spk2utt over ``minutes`` of audio; returns the data dir.
    With min_seconds == max_seconds == minutes * 60: one long recording."""
    data = Path(root) / "data"
    if (data / "spk2utt").is_file():
        return data
    rng = np.random.default_rng(seed)
    speech = [sf.read(p, dtype="float32")[0] for p in SPEECH]
    (Path(root) / "wav").mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    total, i, lines = 0.0, 0, []
    while total < minutes * 60:
        seconds = float(rng.uniform(min_seconds, max_seconds))
        wave = _utterance(rng, speech, int(seconds * RATE))
        path = Path(root).resolve() / "wav" / f"utt{i:05d}.wav"
        sf.write(path, wave, RATE, subtype="PCM_16")
        lines.append((f"utt{i:05d}", str(path)))
        total += seconds
        i += 1
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in lines))
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u, _ in lines))
    (data / "spk2utt").write_text("".join(f"{u} {u}\n" for u, _ in lines))
    return data


def _utterance(rng, speech, n):
    out = np.zeros(n, dtype=np.float32)
    at = 0
    while at < n:
        source = speech[rng.integers(len(speech))]
        start = int(rng.integers(0, len(source) - RATE // 2))
        piece = source[start:start + int(rng.integers(RATE // 2, 2 * RATE))]
        piece = piece[: n - at] * np.float32(10 ** (rng.uniform(-6, 6) / 20))
        out[at:at + len(piece)] = piece
        at += len(piece)
    out += rng.normal(0, 1e-3, n).astype(np.float32)
    return np.clip(out, -1, 1)
