"""Kaldi front ends: fbank / MFCC (numpy, native, torch or Kaldi's binaries) followed by CMVN.

Public API: ``FrontEndSpec`` (what to compute), ``FrontEnd`` (computes it),
``FeatureOptions`` (Kaldi's options), ``CmvnStats``.
"""

from dataclasses import dataclass

from speech_reps.errors import ConfigError
from speech_reps.frontend.cmvn import CMVN_MODES, CmvnStats
from speech_reps.frontend.options import FeatureOptions

BACKENDS = ("numpy", "native", "torch", "kaldi")


def is_gpu_batched(spec):
    """Whether ``spec``'s front end runs batched on a GPU (in the main process)."""
    return batched_on_gpu(spec.backend, spec.device)


def batched_on_gpu(backend, device):
    """Whether a front end of ``backend`` on ``device`` runs batched on a GPU."""
    return backend == "torch" and str(device).startswith("cuda")


def choose_backend(backend, device):
    """The backend a model's front end uses: the one asked for, else the device's default
    (speech_reps/defaults.py: torch on a GPU, batched on the device; numpy on a CPU)."""
    if backend is not None:
        return backend
    from speech_reps.defaults import default_fbank_backend

    return default_fbank_backend(device)


@dataclass
class FrontEndSpec:
    """A Kaldi feature program with its options, the backend running it, and the CMVN after it."""

    options: FeatureOptions
    backend: str = "numpy"
    cmvn: str = "none"  # none | utt | spk
    norm_vars: bool = False
    device: str = "cpu"  # where the torch backend runs

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigError(f"--fbank-backend {self.backend}: expected one of {', '.join(BACKENDS)}")
        if self.cmvn not in CMVN_MODES:
            raise ConfigError(f"--cmvn {self.cmvn}: expected one of {', '.join(CMVN_MODES)}")

    @property
    def kind(self):
        return self.options.kind


class FrontEnd:
    """Runs a FrontEndSpec on single utterances or GPU batches; the speaker statistics of
    --cmvn spk are gathered by the engine (engine/input_stage.py)."""

    def __init__(self, spec: FrontEndSpec):
        self.spec = spec
        if spec.backend == "kaldi":
            from speech_reps.frontend.kaldi_binaries import KaldiBinaryBackend
            self.backend = KaldiBinaryBackend(spec.options)
        elif spec.backend == "torch":
            from speech_reps.frontend.torch_backend import TorchBackend
            self.backend = TorchBackend(spec.options, spec.device)
        elif spec.backend == "numpy":
            from speech_reps.frontend.numpy_backend import NumpyBackend
            self.backend = NumpyBackend(spec.options)
        else:
            from speech_reps.frontend.native import NativeBackend
            self.backend = NativeBackend(spec.options)

    @property
    def batched(self):
        """True when the backend computes whole batches on a GPU (torch on cuda): the engine
        then runs it in the main process on the model's batches. Otherwise the front end runs
        per utterance in the loader workers (torch on the CPU too: one thread per worker)."""
        return is_gpu_batched(self.spec)

    def features_batch(self, keys, waves, speaker_stats=None, on_device=False):
        """CMVN'd features of several utterances (torch backend); ``speaker_stats``: each
        utterance's speaker's CmvnStats (--cmvn spk), applied after the batch's raw features.
        numpy arrays, or with ``on_device`` and a GPU backend (no speaker statistics), views of
        the batch's tensor left on the GPU for a model there."""
        from speech_reps.frontend.torch_backend import unpadded, utterance_cmvn

        if speaker_stats is not None:
            raw = self.backend.compute_batch(waves)
            return [self.normalise(k, f, stats) for k, f, stats in zip(keys, raw, speaker_stats)]
        feats, counts = self.backend.padded_features(waves)
        if self.spec.cmvn == "utt" and feats.shape[1] > 0:
            feats = utterance_cmvn(feats, counts, self.spec.norm_vars)
        return unpadded(feats, counts, on_device)

    def features(self, key, wave):
        """Raw fbank/MFCC of one utterance (no CMVN)."""
        return self.backend.compute(key, wave)

    def normalise(self, key, feats, stats=None):
        """Apply the spec's CMVN: per utterance, or with the given speaker ``stats``."""
        if self.spec.cmvn == "none" or len(feats) == 0:
            return feats
        if stats is None:
            stats = CmvnStats.of(feats)
        return stats.apply(feats, self.spec.norm_vars, key)


__all__ = ["BACKENDS", "choose_backend", "CMVN_MODES", "CmvnStats", "FeatureOptions", "FrontEnd", "FrontEndSpec"]
