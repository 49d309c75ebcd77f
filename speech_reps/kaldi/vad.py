"""Kaldi's energy voice-activity detection and voiced-frame selection, for speaker vectors.

``compute_vad`` is Kaldi's ``compute-vad`` (ivector/voice-activity-detection.cc): with E the
first column of the MFCC (the log energy when --use-energy=true, Kaldi's default), the threshold
is ``vad-energy-threshold + vad-energy-mean-scale * mean(E)``, and frame t is voiced when, over
the frames [t - context, t + context] inside the utterance, at least ``vad-proportion-threshold``
of them have E above the threshold. The arithmetic is float32, as Kaldi's; Kaldi sums E with
BLAS (summation order unknown), we sum in float64 and round once, the closest float32 to the
exact mean. Decisions are float32 vectors of 1.0 / 0.0, one per MFCC frame, written as Kaldi's
``vad.ark``/``vad.scp`` (binary vectors that Kaldi's select-voiced-frames reads).

``VoicedFrames`` applies a vad.scp to a model's output, as ``select-voiced-frames`` does for
10 ms features: only voiced frames are kept (or pooled). Model frames of another rate get their
decision from ``voiced_model_frames``, the one mapping rule (see there).
"""

import logging
from dataclasses import dataclass, fields
from pathlib import Path

import kaldiio
import numpy as np

from speech_reps.errors import AudioError, ConfigError
from speech_reps.kaldi.options import read_option_file, to_bool, to_number

log = logging.getLogger(__name__)

# the framing of a VAD vector: Kaldi MFCC's default 25 ms window every 10 ms
VAD_SHIFT_MS = 10
VAD_WINDOW_MS = 25
_UNITS = 400  # positions in 1/400 sample: VAD frame centres and model spans are exact integers


@dataclass(frozen=True)
class VadOptions:
    """compute-vad's options, with Kaldi's names (``--vad-energy-threshold`` ...) and defaults."""

    vad_energy_threshold: float = 5.0
    vad_energy_mean_scale: float = 0.5
    vad_frames_context: int = 0
    vad_proportion_threshold: float = 0.6
    omit_unvoiced_utts: bool = False  # compute-vad's own: write nothing for an all-unvoiced utterance

    @classmethod
    def from_file(cls, path):
        """Options from a Kaldi option file (e.g. conf/vad.conf); None: Kaldi's defaults."""
        if path is None:
            return cls()
        known = {f.name.replace("_", "-"): f for f in fields(cls)}
        values = {}
        for name, line in read_option_file(path).items():
            if name not in known:
                raise ConfigError(f"{line.source}: --{name}: not an option of compute-vad "
                                  f"(expected one of --{', --'.join(known)})")
            kind = known[name].type
            values[known[name].name] = to_bool(line) if kind in (bool, "bool") else \
                to_number(line, int if kind in (int, "int") else float)
        opts = cls(**values)
        opts.check(str(path))
        return opts

    def check(self, where="compute-vad"):
        """Kaldi's own assertions, as a ConfigError instead of a crash."""
        if self.vad_energy_mean_scale < 0:
            raise ConfigError(f"{where}: --vad-energy-mean-scale={self.vad_energy_mean_scale:g}: must be >= 0")
        if self.vad_frames_context < 0:
            raise ConfigError(f"{where}: --vad-frames-context={self.vad_frames_context}: must be >= 0")
        if not 0.0 < self.vad_proportion_threshold < 1.0:
            raise ConfigError(f"{where}: --vad-proportion-threshold={self.vad_proportion_threshold:g}: "
                              "must be in (0, 1)")

    def to_conf_text(self, header=None):
        lines = [f"# {header}"] if header else []
        for f in fields(self):
            value = getattr(self, f.name)
            value = ("true" if value else "false") if isinstance(value, bool) else f"{value:g}"
            lines.append(f"--{f.name.replace('_', '-')}={value}")
        return "\n".join(lines) + "\n"


def compute_vad(feats, opts=VadOptions()):
    """Kaldi's compute-vad on one utterance's (T, D) MFCC: a float32 vector of 1.0 (voiced) / 0.0."""
    energy = np.asarray(feats, dtype=np.float32)[:, 0]
    num = len(energy)
    if num == 0:
        return np.zeros(0, dtype=np.float32)
    f32 = np.float32
    threshold = f32(opts.vad_energy_threshold)
    if opts.vad_energy_mean_scale != 0.0:  # float32 throughout, in Kaldi's order of operations
        threshold = f32(threshold + f32(f32(opts.vad_energy_mean_scale) * f32(energy.sum(dtype=np.float64))) / f32(num))
    above = np.concatenate([[0], np.cumsum(energy > threshold)])
    t, c = np.arange(num), opts.vad_frames_context
    lo, hi = np.maximum(t - c, 0), np.minimum(t + c + 1, num)
    above_in_window = (above[hi] - above[lo]).astype(f32)
    frames_in_window = (hi - lo).astype(f32)
    return (above_in_window >= frames_in_window * f32(opts.vad_proportion_threshold)).astype(f32)


def write_vad(ark, scp, decisions):
    """``decisions`` {utt: vector} (in order) as Kaldi binary float vectors: <ark> and <scp>
    (absolute paths, as Kaldi's compute_vad_decision.sh writes them)."""
    ark, scp = Path(ark).resolve(), Path(scp)
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for utt, vad in decisions.items():
            writer(utt, np.asarray(vad, dtype=np.float32))


# --- mapping 10 ms VAD frames onto a model's frames ------------------------------------------
def vad_frame_counts(num_samples, sample_rate):
    """An utterance's 25 ms / 10 ms frame counts with --snip-edges=false and =true, exactly
    (integer arithmetic): round(duration / 10 ms), and 1 + floor((duration - 25 ms) / 10 ms)."""
    r, n = sample_rate, num_samples
    return (200 * n + r) // (2 * r), (0 if 40 * n < r else 1 + (200 * n - 5 * r) // (2 * r))


def vad_frame_centres(num_vad_frames, num_samples, sample_rate):
    """Centres of an utterance's VAD frames in 1/400 samples, or None when ``num_vad_frames``
    is not the utterance's 10 ms frame count. The count says how the MFCC was framed:
    round(duration / 10 ms) frames centred at (k + 1/2) 10 ms (--snip-edges=false, as VoxCeleb's
    and conf/mfcc_vad.conf), or 1 + floor((duration - 25 ms) / 10 ms) frames centred at
    k 10 ms + 12.5 ms (Kaldi's default --snip-edges=true). The two counts always differ."""
    r, k = sample_rate, np.arange(num_vad_frames, dtype=np.int64)
    unsnipped, snipped = vad_frame_counts(num_samples, sample_rate)
    if num_vad_frames == unsnipped:
        return (2 * k + 1) * (r * _UNITS // 200)  # (k + 1/2) * 10 ms
    if num_vad_frames == snipped:
        return (4 * k + 5) * (r * _UNITS // 400)  # k * 10 ms + 12.5 ms
    return None


def voiced_model_frames(vad, vad_centres, starts, ends):
    """The voicing of model frames from the VAD frames (the one mapping rule).

    Model frame j spans [starts[j], ends[j]) of the audio (its hop for frame-rate models, its
    whole window for GE2E's partials and TRILL's frames); the VAD frames it spans are those whose
    centre lies in that span. It is voiced when at least half of them are voiced. A frame that
    spans no VAD frame centre (a span under 10 ms) takes the decision of the VAD frame nearest to
    the middle of its span. For a 10 ms model framed as the VAD, frame j is VAD frame j:
    select-voiced-frames exactly. All positions in the same unit (``vad_frame_centres``'s).
    """
    voiced = np.asarray(vad) != 0
    starts, ends = np.asarray(starts), np.asarray(ends)
    lo = np.searchsorted(vad_centres, starts, side="left")
    hi = np.searchsorted(vad_centres, ends, side="left")
    voiced_before = np.concatenate([[0], np.cumsum(voiced)])
    num_voiced, num_spanned = voiced_before[hi] - voiced_before[lo], hi - lo
    result = 2 * num_voiced >= num_spanned
    empty = np.flatnonzero(num_spanned == 0)
    if len(empty) and len(voiced):
        middle = (starts[empty] + ends[empty]) / 2
        right = np.clip(np.searchsorted(vad_centres, middle), 0, len(voiced) - 1)
        left = np.maximum(right - 1, 0)
        nearest = np.where(np.abs(vad_centres[left] - middle) <= np.abs(vad_centres[right] - middle), left, right)
        result[empty] = voiced[nearest]
    elif len(empty):
        result[empty] = False
    return result


class VoicedFrames:
    """A vad.scp applied to model outputs: ``select(utt, num_samples, feats)`` -> the voiced
    rows, or an AudioError naming the cause (no VAD entry, a length that is not the utterance's
    10 ms frame count, no voiced frame: select-voiced-frames' errors)."""

    def __init__(self, vad_scp, featurizer):
        self.path = Path(vad_scp)
        if not self.path.is_file():
            raise ConfigError(f"--vad-scp {vad_scp}: no such file")
        if getattr(featurizer, "trim_silence", False):
            raise ConfigError("--vad-scp: ge2e with --trim-silence true cuts the audio, so its frames "
                              "no longer line up with the VAD's; use one or the other")
        try:
            self.table = kaldiio.load_scp(str(self.path))
        except Exception as e:  # noqa: BLE001 - kaldiio raises assorted errors on a bad scp
            raise ConfigError(f"--vad-scp {vad_scp}: cannot read: {e}") from None
        self.featurizer = featurizer

    def mask(self, utt, num_samples, num_frames):
        """Boolean voicing of the utterance's ``num_frames`` model frames."""
        source = str(self.path)
        if utt not in self.table:
            raise AudioError(utt, source, "no VAD entry for this utterance")
        try:
            vad = np.asarray(self.table[utt], dtype=np.float32).reshape(-1)
        except Exception as e:  # noqa: BLE001 - a missing or corrupt ark
            raise AudioError(utt, source, f"cannot read its VAD vector: {e}") from None
        rate = self.featurizer.sample_rate
        centres = vad_frame_centres(len(vad), num_samples, rate)
        if centres is None:
            unsnipped, snipped = vad_frame_counts(num_samples, rate)
            raise AudioError(utt, source, f"VAD has {len(vad)} frames, but the utterance ({num_samples / rate:.2f} s) "
                                          f"has {unsnipped} frames of 10 ms (snip-edges=false) or {snipped} "
                                          "(snip-edges=true)")
        starts, ends = self.featurizer.frame_spans(num_samples)
        if len(starts) != num_frames:
            raise RuntimeError(f"{self.featurizer.name}: frame_spans gives {len(starts)} frames, "
                               f"num_frames {num_frames}")
        voiced = voiced_model_frames(vad, centres, np.round(np.asarray(starts, dtype=np.float64) * _UNITS),
                                     np.round(np.asarray(ends, dtype=np.float64) * _UNITS))
        if not voiced.any():
            raise AudioError(utt, source, "no frame was judged voiced" + (
                "" if vad.any() else " (the VAD found no voiced frame)"))
        return voiced

    def select(self, utt, num_samples, feats):
        """The voiced rows of ``feats``; an AudioError (returned, not raised) when there are none."""
        try:
            return feats[self.mask(utt, num_samples, len(feats))]
        except AudioError as e:
            return e


def drop_stale_vad_scp(data_dir, frame_shift, frames_selected):
    """Remove <data_dir>/vad.scp from an output data dir whose frames it does not describe:
    after voiced-frame selection, or when the frames are not 10 ms (Kaldi's
    prepare_feats_for_egs.sh likewise drops vad.scp once silence is removed)."""
    vad_scp = Path(data_dir) / "vad.scp"
    if vad_scp.is_file() and (frames_selected or abs(frame_shift - VAD_SHIFT_MS / 1000) > 1e-9):
        vad_scp.unlink()
