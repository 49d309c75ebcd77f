"""fbank / MFCC and utterance CMVN in batched PyTorch, on the CPU or a GPU (--fbank-backend torch).

The same computation as Kaldi's compute-fbank-feats / compute-mfcc-feats (feature-window.cc,
feature-fbank.cc, feature-mfcc.cc, mel-computations.cc), written for a padded batch: frames are
gathered with Kaldi's edge reflection per utterance, then DC removal, energy, pre-emphasis,
window, FFT, mel banks, log, DCT and lifter run on the whole batch at once. Padding frames are
computed and dropped; every utterance's frames depend on its own samples only.

Dither draws from torch's generator, not Kaldi's: with ``--dither`` > 0 the features are equal
to Kaldi's only in distribution. The models' confs set dither 0.
"""

import math

import numpy as np

from speech_reps.errors import ConfigError

FLT_EPSILON = float(np.finfo(np.float32).eps)
BLOCK_FRAMES = 4096


def window_function(kind, size, blackman_coeff=0.42):
    """Kaldi's FeatureWindowFunction, computed in double like Kaldi, as float32."""
    i = np.arange(size, dtype=np.float64)
    a = 2 * math.pi / (size - 1)
    if kind == "hanning":
        w = 0.5 - 0.5 * np.cos(a * i)
    elif kind == "sine":
        w = np.sin(0.5 * a * i)
    elif kind == "hamming":
        w = 0.54 - 0.46 * np.cos(a * i)
    elif kind == "povey":
        w = (0.5 - 0.5 * np.cos(a * i)) ** 0.85
    elif kind == "rectangular":
        w = np.ones(size)
    elif kind == "blackman":
        w = blackman_coeff - 0.5 * np.cos(a * i) + (0.5 - blackman_coeff) * np.cos(2 * a * i)
    else:
        raise ConfigError(f"--window-type={kind}: unknown window type")
    return w.astype(np.float32)


def mel_scale(freq):
    return 1127.0 * np.log(1.0 + freq / 700.0)


def mel_banks(num_bins, sample_rate, padded_size, low_freq, high_freq):
    """Kaldi's MelBanks (no VTLN) as a (num_bins, padded_size // 2 + 1) float32 matrix.

    Like Kaldi, the Nyquist bin gets no weight (its loop stops at padded_size / 2 - 1)."""
    nyquist = 0.5 * sample_rate
    high = high_freq if high_freq > 0 else nyquist + high_freq
    if low_freq < 0 or low_freq >= nyquist or high <= 0 or high > nyquist or high <= low_freq:
        raise ConfigError(f"bad values in options: low-freq {low_freq:g} and high-freq {high:g} "
                          f"vs. nyquist {nyquist:g}")
    num_fft_bins = padded_size // 2
    mel_low, mel_high = mel_scale(low_freq), mel_scale(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    mel = mel_scale(sample_rate / padded_size * np.arange(num_fft_bins))
    banks = np.zeros((num_bins, num_fft_bins + 1), dtype=np.float64)
    for b in range(num_bins):
        left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
        inside = (mel > left) & (mel < right)
        weight = np.where(mel <= center, (mel - left) / (center - left), (right - mel) / (right - center))
        banks[b, :num_fft_bins] = np.where(inside, weight, 0.0)
        if not inside.any():
            raise ConfigError(f"--num-mel-bins={num_bins}: mel bin {b} is empty (too many bins)")
    return banks.astype(np.float32)


def dct_matrix(num_ceps, num_bins):
    """The first ``num_ceps`` rows of Kaldi's ComputeDctMatrix (num_bins x num_bins)."""
    n = np.arange(num_bins)
    m = np.sqrt(2.0 / num_bins) * np.cos(math.pi / num_bins * (n[None, :] + 0.5) * np.arange(num_ceps)[:, None])
    m[0] = math.sqrt(1.0 / num_bins)
    return m.astype(np.float32)


def lifter_coeffs(num_ceps, q):
    return (1.0 + 0.5 * q * np.sin(math.pi * np.arange(num_ceps) / q)).astype(np.float32)


class TorchBackend:
    """Computes batches of utterances; ``options`` is a FeatureOptions, ``device`` a torch device."""

    name = "torch"

    def __init__(self, options, device="cpu"):
        import torch

        unsupported = options.unsupported_natively()
        if unsupported:
            raise ConfigError(f"{' '.join(unsupported)}: not supported by the torch front end; "
                              "use --fbank-backend kaldi with Kaldi's binaries on PATH")
        self.options = o = options
        self.device = torch.device(device)
        self.size, self.shift = o.window_size, o.window_shift
        if self.size < 2 or self.shift < 1:
            raise ConfigError(f"--frame-length={o['frame-length']:g} / --frame-shift={o['frame-shift']:g}: "
                              f"window of {self.size} samples, shift {self.shift}")
        self.padded = 1 << (self.size - 1).bit_length() if o["round-to-power-of-two"] else self.size
        mel_bins = o["num-mel-bins"]
        tensors = {"window": window_function(o["window-type"], self.size, o["blackman-coeff"]),
                   "banks": mel_banks(mel_bins, o.sample_rate, self.padded, o["low-freq"], o["high-freq"])}
        if o.kind == "mfcc":
            if o["num-ceps"] > mel_bins:
                raise ConfigError(f"--num-ceps={o['num-ceps']} is more than --num-mel-bins={mel_bins}")
            tensors["dct"] = dct_matrix(o["num-ceps"], mel_bins)
            if o["cepstral-lifter"] != 0:
                tensors["lifter"] = lifter_coeffs(o["num-ceps"], o["cepstral-lifter"])
        self._t = {k: torch.from_numpy(v).to(self.device) for k, v in tensors.items()}
        self._energy_floor = math.log(o["energy-floor"]) if o["energy-floor"] > 0 else None

    # --- public API ----------------------------------------------------------------------
    def compute(self, key, wave):
        """Features (T, D) float32 of one utterance; ``wave`` is 1-D at int16 scale."""
        return self.compute_batch([wave])[0]

    def compute_batch(self, waves):
        """Features of several utterances: a list of (T_i, D) float32 arrays."""
        return unpadded(*self.padded_features(waves))

    def padded_features(self, waves):
        """(B, T_max, D) tensor on the device and the frame count of each utterance. ``waves``:
        float32 at int16 scale, or int16 (the loader workers send 16-bit audio so, engine/inputs.py)."""
        import torch

        from speech_reps.models.torch_device import exact_float32

        lengths = [len(w) for w in waves]
        counts = [self.options.num_frames(n) for n in lengths]
        if max(counts, default=0) == 0:
            return torch.zeros((len(waves), 0, self.options.dim), device=self.device), counts
        samples = self._to_device(waves)
        # no TF32 in the mel and DCT matmuls, even when the model on this GPU runs --dtype tf32
        with torch.inference_mode(), exact_float32(self.device):
            frames = self._frames(samples, counts, lengths)
            # blocks of frames: the spectra of an hour-long recording would take GBs at once
            feats = torch.cat([self._features(frames[:, f:f + BLOCK_FRAMES])
                               for f in range(0, frames.shape[1], BLOCK_FRAMES)], dim=1)
            if self.options["subtract-mean"]:
                mask = _mask(counts, feats.shape[1], self.device).unsqueeze(-1)
                mean = (feats.double() * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)
                feats = feats - mean.float()
        return feats, counts

    def _to_device(self, waves):
        """The batch's samples end to end, one flat float32 tensor on the device. For a GPU they
        are packed into page-locked memory by one copy on the host, unpadded and in their own
        dtype (int16 is half the bytes), then copied to the device without stopping the host and
        made float32 there: the host's time per batch is that one pass over the audio. (Padding
        on the host, then pinning, took three passes over up to twice the bytes: most of the
        front end's time in a GPU job.)"""
        import torch

        waves = [np.asarray(w) for w in waves]  # a list of samples too, as before
        int16 = all(w.dtype == np.int16 for w in waves)
        pinned = self.device.type == "cuda"
        host = torch.empty(sum(len(w) for w in waves), dtype=torch.int16 if int16 else torch.float32,
                           pin_memory=pinned)
        np.concatenate(waves, out=host.numpy(), casting="same_kind")
        return host.to(self.device, non_blocking=pinned).float()

    # --- the computation -----------------------------------------------------------------
    def _frames(self, samples, counts, lengths):
        """(B, F, window) frames with Kaldi's edge reflection, each within its own length;
        ``samples``: the utterances' samples end to end.

        Each utterance's frames read one signal: its samples with, at both of its own edges,
        the reflection Kaldi's ExtractWindow applies, gathered for the whole batch at once (no
        loop over the utterances, no synchronisation with the device); ``unfold`` then views
        the signals as overlapping frames without a copy."""
        import torch

        from speech_reps.models.torch_device import small_to_device

        offset = 0 if self.options["snip-edges"] else self.size // 2 - self.shift // 2
        span = (max(counts) - 1) * self.shift + self.size
        needed = [(count - 1) * self.shift + self.size if count else 0 for count in counts]
        starts = np.concatenate([[0], np.cumsum(lengths[:-1], dtype=np.int64)])
        # a batch past 2^31 samples (37 h), or one utterance whose reflection's period (2n) passes it
        index_type = index_dtype(max(len(samples), 2 * max(lengths) + span + offset))
        n, needed, starts = small_to_device(np.array([lengths, needed, starts], np.int64)[:, :, None],
                                            self.device).to(index_type)  # one copy for the three
        position = torch.arange(span, device=self.device, dtype=index_type)[None, :]
        inside = position < needed  # an empty wave needs nothing (and has no period to reflect in)
        index = torch.where(inside, reflect_into(position - offset, n.clamp(min=1)) + starts, 0)
        signals = samples.index_select(0, index.reshape(-1)).view(len(lengths), span)
        return torch.where(inside, signals, 0.0).unfold(1, self.size, self.shift)

    def _features(self, frames):
        import torch

        o = self.options
        if o["dither"] != 0:
            frames = frames + o["dither"] * torch.randn_like(frames)
        if o["remove-dc-offset"]:
            frames = frames - frames.mean(-1, keepdim=True)
        energy = None
        if o["use-energy"] and o["raw-energy"]:
            energy = _log_energy(frames)
        c = o["preemphasis-coefficient"]
        if c != 0:
            frames = torch.cat([frames[..., :1] * (1 - c), frames[..., 1:] - c * frames[..., :-1]], dim=-1)
        frames = frames * self._t["window"]
        if o["use-energy"] and not o["raw-energy"]:
            energy = _log_energy(frames)
        spectrum = torch.fft.rfft(frames, n=self.padded)
        power = spectrum.real.square() + spectrum.imag.square()
        if o.kind == "fbank" and not o["use-power"]:
            power = power.sqrt()
        mel = _batch_invariant_matmul(power, self._t["banks"].T)
        if o.kind == "mfcc" or o["use-log-fbank"]:
            mel = mel.clamp(min=FLT_EPSILON).log()
        if energy is not None and self._energy_floor is not None:
            energy = energy.clamp(min=self._energy_floor)
        if o.kind == "fbank":
            if energy is None:
                return mel
            parts = [mel, energy.unsqueeze(-1)] if o["htk-compat"] else [energy.unsqueeze(-1), mel]
            return torch.cat(parts, dim=-1)
        ceps = _batch_invariant_matmul(mel, self._t["dct"].T)
        if "lifter" in self._t:
            ceps = ceps * self._t["lifter"]
        if energy is not None:
            ceps = torch.cat([energy.unsqueeze(-1), ceps[..., 1:]], dim=-1)
        if o["htk-compat"]:  # c0 (or the energy) goes last; c0 loses the DCT's sqrt(2) scale
            c0 = ceps[..., :1] if energy is not None else ceps[..., :1] * math.sqrt(2)
            ceps = torch.cat([ceps[..., 1:], c0], dim=-1)
        return ceps


def index_dtype(largest):
    """int32 for the gather's indexes (half the memory) when every value computed on the way stays
    below ``largest`` < 2^31 - 1, else int64."""
    import torch

    return torch.int32 if largest < 2 ** 31 - 1 else torch.int64


def reflect_into(position, n):
    """Where Kaldi's ExtractWindow reads sample ``position`` of a wave of ``n`` samples (integer
    numpy arrays or torch tensors, broadcast): reflected at -1/2 and at n - 1/2, repeatedly until
    inside [0, n). The two reflections repeat with period 2n, and of the two points of [0, 2n) a
    position maps to, exactly one lies in [0, n): one remainder (floored, as ``%`` is for both)
    and one reflection give it."""
    m = position % (2 * n)
    return m + (m >= n) * (2 * n - 1 - 2 * m)


def _batch_invariant_matmul(x, weights):
    """``x @ weights`` in float32, (almost always) the same whatever the batch around each row:
    computed in float64 and rounded. In float32 the GPU's matrix kernels, chosen by the number of
    rows (the whole batch's frames), sum in orders that differ by ~1e-7 relative, and a
    low-variance column of a short utterance amplifies that through CMVN's variance
    normalisation (3e-5 measured on an H200, breaking "a batch equals its utterances one by
    one"); float64's differences, ~1e-16 relative, change the float32 rounding of only the rare
    element that lies that close to a rounding boundary. The cost is small: the mel and DCT
    matrices are a few hundred columns."""
    return (x.double() @ weights.double()).float()


def unpadded(feats, counts, on_device=False):
    """A padded (B, T, D) tensor as a list of (T_i, D) float32 arrays; with ``on_device`` and
    a tensor on a GPU, as views of it there (models/torch_device.py's per_utterance)."""
    from speech_reps.models.torch_device import per_utterance

    return per_utterance(feats if on_device else feats.cpu(), counts)


def _log_energy(frames):
    return frames.square().sum(-1).clamp(min=FLT_EPSILON).log()


def _mask(counts, length, device):
    import torch

    from speech_reps.models.torch_device import small_to_device

    return (torch.arange(length, device=device)[None, :] < small_to_device(counts, device)[:, None]).double()


def utterance_cmvn(feats, counts, norm_vars):
    """Kaldi per-utterance CMVN of a padded (B, T, D) batch: double-precision statistics,
    biased variance floored at 1e-20, scale and offset applied in float32 like apply-cmvn."""
    from speech_reps.frontend.cmvn import VARIANCE_FLOOR

    mask = _mask(counts, feats.shape[1], feats.device).unsqueeze(-1)
    x = feats.double() * mask
    count = mask.sum(1, keepdim=True).clamp(min=1)
    mean = x.sum(1, keepdim=True) / count
    if not norm_vars:
        return feats - mean.float()
    var = (x.square().sum(1, keepdim=True) / count - mean.square()).clamp(min=VARIANCE_FLOOR)
    scale = 1.0 / var.sqrt()
    return feats * scale.float() + (-mean * scale).float()
