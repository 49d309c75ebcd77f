"""Cepstral mean and variance normalisation with Kaldi's semantics.

compute-cmvn-stats accumulates, in double precision, the per-dimension sum and sum of squares
and the frame count; apply-cmvn subtracts the mean and, with --norm-vars=true, divides by the
biased standard deviation, flooring the variance at 1e-20 (no epsilon added).
"""

import logging

import numpy as np

VARIANCE_FLOOR = 1e-20
CMVN_MODES = ("none", "utt", "spk")

log = logging.getLogger(__name__)


class CmvnStats:
    """Kaldi CMVN statistics of one utterance or speaker."""

    def __init__(self, dim):
        self.sum = np.zeros(dim, dtype=np.float64)
        self.sumsq = np.zeros(dim, dtype=np.float64)
        self.count = 0

    @classmethod
    def of(cls, feats):
        stats = cls(feats.shape[1])
        stats.accumulate(feats)
        return stats

    def accumulate(self, feats):
        x = np.asarray(feats, dtype=np.float64)
        self.sum += x.sum(axis=0)
        self.sumsq += np.square(x).sum(axis=0)
        self.count += x.shape[0]

    def apply(self, feats, norm_vars, key=""):
        """Normalise ``feats`` (T, D) with these stats; returns float32 like apply-cmvn."""
        if self.count == 0:
            raise ValueError(f"CMVN stats for '{key}' are empty (no frames)")
        mean = self.sum / self.count
        if not norm_vars:
            return (feats - mean.astype(np.float32)).astype(np.float32)
        var = self.sumsq / self.count - np.square(mean)
        floored = var < VARIANCE_FLOOR
        if floored.any():
            log.warning("CMVN for '%s': flooring the variance of %d dims to %g",
                        key, int(floored.sum()), VARIANCE_FLOOR)
            var = np.where(floored, VARIANCE_FLOOR, var)
        scale = 1.0 / np.sqrt(var)
        offset = -mean * scale
        # apply-cmvn computes scale/offset in double, then applies them to float features.
        return (feats.astype(np.float32) * scale.astype(np.float32) + offset.astype(np.float32)).astype(np.float32)
