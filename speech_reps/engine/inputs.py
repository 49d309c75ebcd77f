"""One utterance into what the model takes, in a loader worker: audio (decoded, cut, resampled,
checked), the model's own wave preparation (GE2E: volume, silence trimming), then the CPU front
end with utterance CMVN when the model wants fbank/MFCC. Runs in the loader worker processes
(engine/prefetch.py), so everything here is picklable and light (torch is imported only for the
torch front end on a CPU); what needs the whole job (speaker CMVN, the batched GPU front end)
is engine/input_stage.py's.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from speech_reps.errors import AudioError, ConfigError
from speech_reps.frontend import FrontEnd, FrontEndSpec, is_gpu_batched
from speech_reps.kaldi import AudioLoader, Utterance
from speech_reps.kaldi.audio import DEFAULT_PIPE_TIMEOUT


@dataclass
class Loaded:
    """What a worker made of one utterance: the model input (a wave, or front-end features) and
    the length of the audio behind it, in samples; or the error that stopped it."""

    utt: Utterance
    input: np.ndarray = None
    num_samples: int = 0
    error: AudioError = None


@dataclass
class InputSpec:
    """What a worker needs to turn an Utterance into a model input."""

    sample_rate: int
    frontend: FrontEndSpec = None  # run in the worker; None: the worker returns the wave
    utterance_cmvn: bool = False  # the worker applies the front end's per-utterance CMVN
    prepare: Callable = None  # the model's wave preparation (Featurizer.wave_preparation)
    min_duration: float = 0.0
    allow_resample: bool = False
    allow_downsample: bool = False
    allow_upsample: bool = False
    channel: int = None
    pipe_timeout: float = DEFAULT_PIPE_TIMEOUT  # seconds a ``cmd |`` may take for one recording
    max_pipe_bytes: int = None  # None: the longest audio accepted at ``sample_rate`` (audio.pipe_byte_cap)
    int16_waves: bool = False  # waves of whole numbers go as int16 (for the batched GPU front end)

    @classmethod
    def for_model(cls, featurizer, allow_resample=False, channel=None, pipe_timeout=DEFAULT_PIPE_TIMEOUT):
        spec = featurizer.frontend if featurizer.input == "fbank" else None
        opts = spec.options if spec is not None else None
        if channel is not None and channel < -1:
            raise ConfigError(f"--channel {channel}: expected a channel index from 0 (or -1: mono audio)")
        if channel is None and opts is not None and opts["channel"] != -1:
            channel = opts["channel"]
        in_worker = spec if spec is not None and not is_gpu_batched(spec) else None
        return cls(
            sample_rate=featurizer.sample_rate,
            frontend=in_worker,
            utterance_cmvn=in_worker is not None and in_worker.cmvn == "utt",
            prepare=featurizer.wave_preparation(),
            min_duration=opts["min-duration"] if opts is not None else 0.0,
            allow_resample=allow_resample, channel=channel, pipe_timeout=pipe_timeout,
            allow_downsample=bool(opts and opts["allow-downsample"]),
            allow_upsample=bool(opts and opts["allow-upsample"]),
            int16_waves=spec is not None and in_worker is None,
        )

    @classmethod
    def before_model(cls, model_class, model_options, allow_resample=False, channel=None,
                     pipe_timeout=DEFAULT_PIPE_TIMEOUT):
        """The spec ``for_model`` will give for a model of ``model_class`` with ``model_options``
        at their defaults, guessed from the class and options before the model exists, so the
        loader workers can start reading while it loads (engine/job.py): torch's import alone
        takes 3-5 s on a GPU host. Only a guess: the engine keeps what the workers read with it
        only when the model's own spec is equal (a conf file that changes the sample rate, say,
        makes it read again). None where no cheap guess exists: a front end that runs in the
        workers (its options come from the model's files) or a wave preparation of the model's
        own."""
        from speech_reps.defaults import requested_device
        from speech_reps.frontend import batched_on_gpu, choose_backend
        from speech_reps.models.base import Featurizer

        if model_class.wave_preparation is not Featurizer.wave_preparation or model_class.input is None:
            return None
        common = dict(sample_rate=model_class.spec.input_rate, allow_resample=allow_resample, channel=channel,
                      pipe_timeout=pipe_timeout)
        if model_class.input == "waveform":
            return cls(**common)
        device = requested_device(model_options)
        backend = choose_backend(model_options.get("backend"), device)
        if model_class.input == "fbank" and batched_on_gpu(backend, device):
            return cls(**common, int16_waves=True)  # the front end runs batched on the GPU
        return None


def as_int16_if_exact(wave):
    """``wave`` as int16 when that holds it exactly (16-bit audio at int16 scale, as read), else
    as it is. Half the bytes through the workers' pipes and into the GPU, for a front end that
    makes it float32 on the device (frontend/torch_backend.py)."""
    with np.errstate(invalid="ignore"):  # values beyond int16 cast to garbage, and compare unequal
        small = wave.astype(np.int16)
    return small if np.array_equal(small, wave) else wave


class InputReader:
    """``load(utt)`` -> a Loaded: the model input, or the AudioError naming why not."""

    def __init__(self, spec: InputSpec):
        self.spec = spec
        self.audio = AudioLoader(spec.sample_rate, allow_resample=spec.allow_resample,
                                 allow_downsample=spec.allow_downsample,
                                 allow_upsample=spec.allow_upsample, channel=spec.channel,
                                 pipe_timeout=spec.pipe_timeout, max_pipe_bytes=spec.max_pipe_bytes)
        self.frontend = FrontEnd(spec.frontend) if spec.frontend is not None else None

    def wave(self, utt):
        """The utterance's audio, checked (not prepared)."""
        wave = self.audio.load(utt)
        if len(wave) == 0:
            raise AudioError(utt.utt, utt.source, "empty audio")
        if not np.isfinite(wave).all():
            raise AudioError(utt.utt, utt.source, "audio contains NaN or Inf")
        if len(wave) < self.spec.min_duration * self.spec.sample_rate:
            raise AudioError(utt.utt, utt.source, f"shorter than --min-duration={self.spec.min_duration:g}s")
        return wave

    def read(self, utt):
        """(model input, number of samples of the prepared audio); raises AudioError."""
        wave = self.wave(utt)
        if self.spec.prepare is not None:
            try:
                wave = self.spec.prepare(wave)
            except ValueError as e:
                raise AudioError(utt.utt, utt.source, str(e)) from None
        if self.frontend is None:
            return (as_int16_if_exact(wave) if self.spec.int16_waves else wave), len(wave)
        try:
            feats = self.frontend.features(utt.utt, wave)
        except (RuntimeError, ValueError) as e:
            raise AudioError(utt.utt, utt.source, f"front end failed: {e}") from None
        if self.spec.utterance_cmvn:
            feats = self.frontend.normalise(utt.utt, feats)
        return feats, len(wave)

    def load(self, utt):
        try:
            model_input, n = self.read(utt)
        except AudioError as e:
            return Loaded(utt, error=e)
        return Loaded(utt, model_input, n)
