"""Kaldi front ends: fbank / MFCC (native or Kaldi's binaries) followed by CMVN.

Public API: ``FrontEndSpec`` (what to compute), ``FrontEnd`` (computes it),
``FeatureOptions`` (Kaldi's options), ``CmvnStats``.
"""

from dataclasses import dataclass

from speech_reps.errors import ConfigError
from speech_reps.frontend.cmvn import CMVN_MODES, CmvnStats
from speech_reps.frontend.options import FeatureOptions

BACKENDS = ("native", "kaldi")


@dataclass
class FrontEndSpec:
    """A Kaldi feature program with its options, the backend running it, and the CMVN after it."""

    options: FeatureOptions
    backend: str = "native"
    cmvn: str = "none"  # none | utt | spk
    norm_vars: bool = False

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigError(f"--fbank-backend {self.backend}: expected one of {', '.join(BACKENDS)}")
        if self.cmvn not in CMVN_MODES:
            raise ConfigError(f"--cmvn {self.cmvn}: expected one of {', '.join(CMVN_MODES)}")

    @property
    def kind(self):
        return self.options.kind


class FrontEnd:
    """Runs a FrontEndSpec on single utterances; CMVN per speaker is the pipeline's job."""

    def __init__(self, spec: FrontEndSpec):
        self.spec = spec
        if spec.backend == "kaldi":
            from speech_reps.frontend.kaldi_binaries import KaldiBinaryBackend as Backend
        else:
            from speech_reps.frontend.native import NativeBackend as Backend
        self.backend = Backend(spec.options)

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


__all__ = ["BACKENDS", "CMVN_MODES", "CmvnStats", "FeatureOptions", "FrontEnd", "FrontEndSpec"]
