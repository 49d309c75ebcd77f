"""The input stage: every step from an utterance to the model's input, CPU or GPU, in one place.

- the loader workers (engine/prefetch.py running engine/inputs.py): audio, the model's wave
  preparation, the CPU front end and utterance CMVN;
- here, in the main process, what needs more than one utterance: the speaker statistics of
  ``--cmvn spk`` (a first pass over all of the job's utterances) and their CMVN, and the torch
  front end on the model's GPU, which computes whole batches (``model_inputs``).

Items are typed: the stage yields ``Ready`` (an input the model can take, with its planned
length in output frames); a resumed run's replay (engine/run.py) adds ``Replayed`` stand-ins.
"""

from dataclasses import dataclass

import numpy as np

from speech_reps.errors import AudioError, ConfigError
from speech_reps.engine.inputs import InputSpec
from speech_reps.engine.prefetch import read_ahead
from speech_reps.frontend import CmvnStats, FrontEnd
from speech_reps.kaldi import Utterance
from speech_reps.kaldi.audio import DEFAULT_PIPE_TIMEOUT


@dataclass
class Ready:
    """An utterance the model can take: its input (a wave or front-end features; raw when the
    front end is batched on the GPU, see ``InputStage.model_inputs``), the length of its audio
    in samples and of its output in frames."""

    utt: Utterance
    input: np.ndarray
    num_samples: int
    frames: int


@dataclass
class Replayed:
    """An utterance an earlier run wrote, standing in the stream of a resumed run with the
    length its batch was planned with, so that the batches are those of the first run."""

    utt: Utterance
    frames: int


class InputStage:
    """``stream(utterances, on_error)`` -> Ready items in order; ``model_inputs(items)`` ->
    what ``featurize`` takes. ``on_error(AudioError)`` hears of each utterance left out."""

    def __init__(self, featurizer, data_dir, allow_resample=False, channel=None, num_workers=0,
                 pipe_timeout=DEFAULT_PIPE_TIMEOUT, loaders=None):
        self.featurizer = featurizer
        self.spec = InputSpec.for_model(featurizer, allow_resample, channel, pipe_timeout)
        self.frontend = FrontEnd(featurizer.frontend) if featurizer.input == "fbank" else None
        self.batched = self.frontend is not None and self.frontend.batched
        self.num_workers = num_workers
        self.loaders = loaders  # prefetch.Loaders started earlier (else each pass starts its own)
        self.spk_stats = None
        if self.frontend and featurizer.frontend.cmvn == "spk":
            if data_dir is None or not data_dir.utt2spk:
                where = f"{data_dir.path}/utt2spk is missing" if data_dir else "needs a data dir with utt2spk"
                raise ConfigError(f"--cmvn spk: {where}")
            self.spk_stats = {}

    def _loaded(self, utterances, on_error):
        if self.loaders is not None:
            items = self.loaders.read(utterances, self.spec)
        else:
            items = read_ahead(utterances, self.spec, self.num_workers)
        for item in items:
            if item.error is not None:
                on_error(item.error)
            else:
                yield item

    def accumulate_speaker_stats(self, utterances, on_error):
        """Pass 1 of --cmvn spk: Kaldi stats over all of each speaker's utterances. An utterance
        whose features are not finite fails here, rather than its speaker's every utterance."""
        for item in self._loaded(utterances, on_error):
            utt = item.utt
            feats = self.frontend.features(utt.utt, item.input) if self.batched else item.input
            if not np.isfinite(feats).all():
                on_error(AudioError(utt.utt, utt.source, "features contain NaN or Inf (audio of an "
                                                         "extreme scale?): left out of its speaker's CMVN"))
                continue
            self.spk_stats.setdefault(utt.spk, CmvnStats(feats.shape[1])).accumulate(feats)

    def stream(self, utterances, on_error):
        """A Ready item for each utterance that can be featurized, in order."""
        for item in self._loaded(utterances, on_error):
            utt, x, n = item.utt, item.input, item.num_samples
            frames = self.featurizer.num_frames(n)
            if frames == 0:
                on_error(AudioError(utt.utt, utt.source, f"shorter than the model's receptive field "
                                                         f"({n} samples give no frame)"))
                continue
            if self.spk_stats is not None and not self.batched:
                x = self.frontend.normalise(utt.utt, x, self.spk_stats[utt.spk])
            yield Ready(utt, x, n, frames)

    def model_inputs(self, items):
        """The model's inputs of a batch of Ready items: theirs, or the batched front end's
        (left on the GPU for a model whose ``device_inputs`` says it takes them there)."""
        if not self.batched:
            return [item.input for item in items]
        keys, waves = [item.utt.utt for item in items], [item.input for item in items]
        stats = None if self.spk_stats is None else [self.spk_stats[item.utt.spk] for item in items]
        return self.frontend.features_batch(keys, waves, stats, on_device=self.featurizer.device_inputs)
