"""A bench-only model that costs nothing: DeCoAR's output shape (2048 dims every 10 ms, Kaldi's
frame count) from a buffer made once, so a run measures the data path alone (reading audio,
batching, the writer, compression) against the disk's own write rate.

Importing this module registers it as ``--model null`` (never part of the toolkit's model list).
"""

import numpy as np

from speech_reps.models.base import Featurizer
from speech_reps.models.declaration import ModelSpec
from speech_reps.models.registry import register

DIM = 2048  # DeCoAR's
WINDOW, SHIFT = 400, 160  # 25 ms / 10 ms at 16 kHz, snip-edges: Kaldi's (and DeCoAR's) frame count


@register(ModelSpec(name="null", summary="bench only: DeCoAR's output shape at no cost", dim=str(DIM),
                   frame_shift="10 ms", input_rate=16000, input="16 kHz waveform", has_conf=False))
class NullFeaturizer(Featurizer):
    input = "waveform"
    frame_shift = 0.01
    sample_rate = 16000
    dim = DIM

    def __init__(self):
        # values like features' (not zeros, which compress to nothing), made once
        self._block = np.random.default_rng(0).standard_normal((1000, DIM), dtype=np.float32)
        self._buffer = self._block[:0]

    @classmethod
    def from_options(cls):
        return cls()

    def num_frames(self, num_samples):
        return 0 if num_samples < WINDOW else 1 + (num_samples - WINDOW) // SHIFT

    def featurize(self, batch):
        frames = [self.num_frames(n) for n in batch.num_samples]
        if max(frames) > len(self._buffer):  # grown rarely: 2 minutes at a time
            self._buffer = np.tile(self._block, (max(frames) // len(self._block) + 12, 1))
        return [self._buffer[:t] for t in frames]
