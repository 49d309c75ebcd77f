"""The Featurizer contract that every model (fbank and MFCC included) implements.

A subclass must define:
  ``name``, ``spec`` registry name and declaration (set by ``@register(ModelSpec(...))``, whose
                   options must be exactly ``from_options``'s keywords)
  ``dim``          output dimension
  ``frame_shift``  seconds between output frames (what goes into the data dir's frame_shift)
  ``sample_rate``  the audio rate the model expects, Hz
  ``input``        "waveform" (1-D int16-scale audio) or "fbank" (the output of ``frontend``)
  ``frontend``     a FrontEndSpec when ``input == "fbank"``, else None
  ``num_frames(num_samples)``  the exact number of output frames for an utterance
  ``featurize(batch)``         a list of (T_i, dim) float32 arrays, one per utterance: numpy
                               arrays, or float32 torch tensors on the model's device, left
                               there (the engine copies them out or compresses them there:
                               engine/output.py; ``host_array`` in models/torch_device.py
                               brings one to the host)
  ``from_options(**options)``  classmethod building the model from CLI/recipe options

Optional:
  ``wave_preparation()``  a waveform model's own audio preparation (volume, silence trimming) as a
                         picklable function wave -> wave (a module-level function or a
                         functools.partial of one, never a bound method: it runs in the loader
                         workers, which do not load the model), applied by the engine to each
                         utterance's audio before batching; it may change the length
                         (``num_frames`` and ``featurize`` then see the prepared wave) and raises
                         ValueError, with the cause, for audio it cannot use. Default: None, the
                         audio unchanged. ``prepare_wave(wave)`` applies it.
  ``pool(feats, how)``    one vector from an utterance's (T, dim) output for ``--pool``;
                         default: kaldi.xvectors.pool (the mean).
  ``device_inputs``      True when ``featurize`` takes the GPU front end's features as tensors
                         on the model's device (``padded_batch`` in models/torch_device.py pads
                         them there); default False: numpy arrays.
  ``frame_spans(num_samples)``  (starts, ends): the audio each output frame stands for, in
                         samples, used to map 10 ms VAD decisions onto the frames (``--vad-scp``,
                         kaldi/vad.py); default: consecutive hops of ``frame_shift``, offset
                         as the Kaldi front end's frames (GE2E and TRILL: their windows).

Batches hold utterances of different lengths; ``featurize`` must return for each exactly
what it returns for that utterance alone (fp32, <= 1e-5 abs): padding never leaks into real
frames. A model imports its framework (torch, TensorFlow) inside its methods, never at module
import, so ``import speech_reps`` stays light. Do not override ``check_output``.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Batch:
    keys: list
    inputs: list  # per utterance: 1-D wave, or (T, D) front-end features
    num_samples: list = field(default_factory=list)  # audio length of each utterance


class Featurizer(ABC):
    name = None
    dim = None
    frame_shift = None
    sample_rate = None
    input = None
    frontend = None
    device_inputs = False

    @classmethod
    @abstractmethod
    def from_options(cls, **options):
        """Build the model; unknown options are an error, never silently ignored."""

    @abstractmethod
    def num_frames(self, num_samples: int) -> int:
        """Exact output frame count for ``num_samples`` samples of audio."""

    @abstractmethod
    def featurize(self, batch: Batch) -> list:
        """One (T_i, dim) float32 array per utterance of ``batch``."""

    def wave_preparation(self):
        """A picklable function: audio -> the audio as ``featurize`` wants it; None: unchanged."""
        return None

    def prepare_wave(self, wave):
        """The audio as ``featurize`` wants it (``wave_preparation`` applied)."""
        prepare = self.wave_preparation()
        return wave if prepare is None else prepare(wave)

    def pool(self, feats, how):
        """One float32 vector for an utterance's (T, dim) output (``--pool how``)."""
        from speech_reps.kaldi.xvectors import pool

        return pool(feats, how)

    def frame_spans(self, num_samples):
        """(starts, ends) in samples of each output frame's share of the audio: hop j is
        [j, j + 1) * frame_shift, centred as the front end's frames are (Kaldi's snip-edges
        frames are centred half a window in, not half a hop)."""
        hop = self.frame_shift * self.sample_rate
        offset = 0.0
        if self.frontend is not None and self.frontend.options["snip-edges"]:
            opts = self.frontend.options
            offset = (opts.window_size - opts.window_shift) / 2 * self.sample_rate / opts.sample_rate
        starts = offset + hop * np.arange(self.num_frames(num_samples))
        return starts, starts + hop

    def describe(self) -> dict:
        """What conf/featurize.yaml records about this model (weights file, sizes...)."""
        return {"dim": self.dim, "frame_shift": self.frame_shift, "sample_rate": self.sample_rate}

    def check_output(self, batch, outputs):
        """Raise if an output does not have the promised shape (a bug, not bad input)."""
        if len(outputs) != len(batch.keys):
            raise RuntimeError(f"{self.name}: {len(outputs)} outputs for {len(batch.keys)} inputs")
        for key, n, out in zip(batch.keys, batch.num_samples, outputs):
            want = (self.num_frames(n), self.dim)
            if tuple(out.shape) != want or str(out.dtype).removeprefix("torch.") != "float32":
                raise RuntimeError(f"{self.name}: utterance {key}: output {out.shape} {out.dtype}, "
                                   f"expected {want} float32")
