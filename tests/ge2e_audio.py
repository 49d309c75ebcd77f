"""The audio the GE2E tests compare on: the golden wavs plus one utterance with a long pause."""

import numpy as np

from conftest import GOLDEN_UTTS, golden_wave

PAUSED = "spk1-pause-spk2"  # spk1-utt1, 1 s of digital silence, spk2-utt1: the VAD trim has work


def reference_audio():
    """{utt: float32 wave in [-1, 1]} as resemblyzer reads 16-bit files (int16 / 32768)."""
    audio = {u: golden_wave(u) / np.float32(32768.0) for u in GOLDEN_UTTS}
    audio[PAUSED] = np.concatenate([audio["spk1-utt1"], np.zeros(16000, np.float32), audio["spk2-utt1"]])
    return audio
