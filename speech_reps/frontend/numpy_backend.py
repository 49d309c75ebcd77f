"""fbank / MFCC on the CPU, vectorised with numpy (--fbank-backend numpy, the CPU default).

Where the package's compiled kernels were built (setup.py: speech_reps/frontend/_fbank_kernels.c,
``_CompiledFrames``), a block's per-frame work up to the mel banks' sums runs there, sixteen frames
at a time in the lanes of the CPU's vectors, its FFT too: 5x numpy's own steps below on one core
(7,200x against 1,350x real time for 20 s of speech, 80 bins, on the 2-core development machine).
numpy's steps remain for an install without a C compiler and for an FFT size that is not a power
of two (--round-to-power-of-two false); both are held to Kaldi's golden outputs.

Kaldi's computation (feature-window.cc, feature-fbank.cc, feature-mfcc.cc, mel-computations.cc)
on all the frames of an utterance at once: frames are a strided view of the samples (edge
reflection as Kaldi's ExtractWindow when snip-edges is false), then DC removal, energy,
pre-emphasis, window, one real FFT, the mel banks, log, DCT and lifter run on blocks of
frames, small enough to stay in cache (each step is a pass over them), on two threads (numpy
leaves the GIL in its FFT and array arithmetic). Measured on the 2-core development machine for
10 min of audio: 0.43-0.53 s on two threads against 0.81-1.33 s on one when the machine was
otherwise quiet; when five other jobs were loading it, two threads were slower (0.97 against
0.74 s). Two, not one per core: featurize.sh runs --nj such jobs side by side.

The mel banks are not a matmul: BLAS's matmul starts its own threads for a block-sized product,
and on a busy CPU waking them cost 50x the product itself (measured: 46 us per frame). Kaldi's
triangular banks overlap only their neighbours, so the even-numbered banks tile the spectrum
without overlap, and so do the odd ones: each set is one weighted sum over contiguous runs of
FFT bins (``np.add.reduceat``), two passes in all. The DCT of MFCC is a small einsum, no BLAS.

Why numpy and not torch on the CPU: kaldi-native-fbank computes one frame at a time (about
half Kaldi's speed per core), and importing torch costs a second or more of start-up, as
long as Kaldi's compute-fbank-feats takes for 30 minutes of audio (docs/benchmarks.md).

Dither draws from numpy's generator, not Kaldi's: with ``--dither`` > 0 the features equal
Kaldi's only in distribution (as the torch backend's).
"""

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from speech_reps.errors import ConfigError
from speech_reps.frontend.torch_backend import (FLT_EPSILON, dct_matrix, lifter_coeffs, mel_banks, reflect_into,
                                                window_function)

try:  # the per-frame work compiled (setup.py); numpy computes the same features without it
    from speech_reps.frontend import _fbank_kernels
except ImportError:  # not built: no C compiler where the package was installed
    _fbank_kernels = None

BLOCK_FRAMES = 256  # 400 KB of 25 ms frames: the passes over a block stay in a core's L2 cache
THREADS = min(2, os.cpu_count() or 1)

_pool = None


def _threads():
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="fbank")
    return _pool


class NumpyBackend:
    """Computes one utterance at a time, its frames in blocks on threads; ``options`` is a
    FeatureOptions; ``threads`` False: all blocks in the calling thread."""

    name = "numpy"

    def __init__(self, options, threads=True):
        unsupported = options.unsupported_natively()
        if unsupported:
            raise ConfigError(f"{' '.join(unsupported)}: not supported by the numpy front end; "
                              "use --fbank-backend kaldi with Kaldi's binaries on PATH")
        self.options = o = options
        self.size, self.shift = o.window_size, o.window_shift
        self.padded = o.padded_window_size  # FeatureOptions checked the window, shift and num-ceps
        self.window = window_function(o["window-type"], self.size, o["blackman-coeff"])
        banks = mel_banks(o["num-mel-bins"], o.sample_rate, self.padded, o["low-freq"], o["high-freq"])
        # only the FFT bins some mel bin weighs: the matmul skips the rest (about a fifth at 16 kHz)
        used = np.flatnonzero(banks.any(axis=0))
        self.first, self.last = int(used[0]), int(used[-1]) + 1
        self.mel = _MelSums(banks[:, self.first:self.last])
        if o.kind == "mfcc":
            self.dct_t = np.ascontiguousarray(dct_matrix(o["num-ceps"], o["num-mel-bins"]).T)
            self.lifter = lifter_coeffs(o["num-ceps"], o["cepstral-lifter"]) if o["cepstral-lifter"] != 0 else None
        self.energy_floor = math.log(o["energy-floor"]) if o["energy-floor"] > 0 else None
        self.threads = threads and THREADS > 1
        self.rng = np.random.default_rng()
        self.compiled = _CompiledFrames.for_options(o, banks, self.first, self.last, self.window)

    def compute(self, key, wave):
        """Features (T, D) float32 of one utterance; ``wave`` is 1-D at int16 scale."""
        wave = np.asarray(wave, dtype=np.float32)
        count = self.options.num_frames(len(wave))
        out = np.empty((count, self.options.dim), dtype=np.float32)
        if count == 0:
            return out
        samples = self._samples(wave, count)
        frames = np.lib.stride_tricks.sliding_window_view(samples, self.size)[::self.shift]

        def block(s):
            n = min(BLOCK_FRAMES, count - s)
            if self.compiled is not None:
                mel, energy = self.compiled(samples[s * self.shift:(s + n - 1) * self.shift + self.size],
                                            n, self.rng)
            else:
                mel, energy = self._mel(frames[s:s + n])
            self._finish(mel, energy, out[s:s + n])

        starts = range(0, count, BLOCK_FRAMES)
        # blocks are independent: any order, the same output (with dither, the generator's draws
        # go to the blocks in the order the threads take them: the same only in distribution)
        if self.threads and count > BLOCK_FRAMES:
            list(_threads().map(block, starts))
        else:
            for s in starts:
                block(s)
        if self.options["subtract-mean"]:
            out -= out.mean(axis=0, dtype=np.float64).astype(np.float32)
        return out

    # --- the computation -----------------------------------------------------------------
    def _samples(self, wave, count):
        """The samples the frames cover, frame i from sample i * shift, with Kaldi's edge
        reflection without snip-edges."""
        needed = (count - 1) * self.shift + self.size
        if not self.options["snip-edges"]:
            wave = wave[reflect_into(np.arange(needed) - (self.size // 2 - self.shift // 2), len(wave))]
        return np.require(wave[:needed], np.float32, ["C", "A"])  # the kernel reads floats

    def _windowed(self, frames, c):
        """DC removal, pre-emphasis and window in three passes from the frames' view: all three
        are linear, so w * pre(x - mean) = w * pre(x) - (1 - c) * mean * w."""
        padded = np.zeros((len(frames), self.padded), dtype=np.float32)
        x = padded[:, :self.size]
        np.multiply(frames, self.window, out=x)  # the copy out of the overlapping view, windowed
        if c != 0:
            x[:, 1:] -= frames[:, :-1] * (c * self.window[1:])
            x[:, 0] *= 1 - c
        mean = frames.mean(axis=1, dtype=np.float32)
        x -= np.multiply.outer(mean * (1 - c), self.window)
        return padded

    def _mel(self, frames):
        """The mel banks' sums (fbank: of the magnitude, or the power with use-power) of a block
        of frames (a view), and their energies (sums of squares, or None), in numpy."""
        o = self.options
        c = np.float32(o["preemphasis-coefficient"])
        if o["dither"] == 0 and o["remove-dc-offset"] and not o["use-energy"]:
            x = self._windowed(frames, c)
            energy = None
        else:
            padded = np.zeros((len(frames), self.padded), dtype=np.float32)
            x = padded[:, :self.size]
            x[:] = frames  # a copy: the view's frames overlap
            if o["dither"] != 0:
                x += np.float32(o["dither"]) * self.rng.standard_normal(x.shape, dtype=np.float32)
            if o["remove-dc-offset"]:
                x -= x.mean(axis=1, keepdims=True)
            energy = None
            if o["use-energy"] and o["raw-energy"]:
                energy = _energy(x)
            if c != 0:
                x[:, 1:] -= c * x[:, :-1]  # the right side is computed first, from the old values
                x[:, 0] *= 1 - c
            x *= self.window
            if o["use-energy"] and not o["raw-energy"]:
                energy = _energy(x)
            x = padded
        # |X|^2 of the bins the banks use: the complex values as (re, im) pairs of float32
        # (x holds the zero padding already: rfft's own padding would be one more copy)
        pairs = np.fft.rfft(x).view(np.float32)[:, 2 * self.first:2 * self.last]
        pairs = pairs * pairs
        power = pairs[:, 0::2]
        power += pairs[:, 1::2]
        if o.kind == "fbank" and not o["use-power"]:
            np.sqrt(power, out=power)
        return self.mel(power), energy

    def _finish(self, mel, energy, out):
        """A block's features into ``out`` from its mel sums and energies (``_mel``)."""
        o = self.options
        if energy is not None:
            np.maximum(energy, FLT_EPSILON, out=energy)
            np.log(energy, out=energy)
        if o.kind == "mfcc" or o["use-log-fbank"]:
            np.maximum(mel, FLT_EPSILON, out=mel)
            np.log(mel, out=mel)
        if energy is not None and self.energy_floor is not None:
            np.maximum(energy, self.energy_floor, out=energy)
        if o.kind == "fbank":
            if energy is None:
                out[:] = mel
            elif o["htk-compat"]:
                out[:, :-1], out[:, -1] = mel, energy
            else:
                out[:, 0], out[:, 1:] = energy, mel
            return
        ceps = np.einsum("ij,jk->ik", mel, self.dct_t)
        if self.lifter is not None:
            ceps *= self.lifter
        if energy is not None:
            ceps[:, 0] = energy
        if o["htk-compat"]:  # c0 (or the energy) goes last; c0 loses the DCT's sqrt(2) scale
            c0 = ceps[:, 0] if energy is not None else ceps[:, 0] * np.float32(math.sqrt(2))
            out[:, :-1], out[:, -1] = ceps[:, 1:], c0
        else:
            out[:] = ceps


class _MelSums:
    """``power @ banks.T`` for Kaldi's banks, as two sums over runs of bins (module doc)."""

    def __init__(self, banks):
        self.num_bins = len(banks)
        self.parts = []
        for parity in (0, 1):
            rows = banks[parity::2]
            starts = [int(np.flatnonzero(row)[0]) for row in rows]
            if (np.count_nonzero(rows, axis=0) > 1).any() or starts != sorted(starts):
                self.parts = None  # not Kaldi's banks after all: a plain matmul
                break
            self.parts.append((parity, rows.sum(axis=0).astype(np.float32), np.array(starts)))
        self.banks_t = np.ascontiguousarray(banks.T)

    def __call__(self, power):
        if self.parts is None:
            return power @ self.banks_t
        mel = np.empty((len(power), self.num_bins), dtype=np.float32)
        for parity, weights, starts in self.parts:
            mel[:, parity::2] = np.add.reduceat(power * weights, starts, axis=1)
        return mel


def _energy(x):
    return np.einsum("ij,ij->i", x, x)


class _CompiledFrames:
    """The per-frame work of ``NumpyBackend._mel`` compiled (speech_reps/frontend/_fbank_kernels.c):
    the constants of its FFT and mel banks, made once; calls give a block's (mel, energy)."""

    @classmethod
    def for_options(cls, o, banks, first, last, window):
        """None where the module was not built, or the FFT size is not a power of two of at
        least 4 (--round-to-power-of-two false). ``banks``, ``first``, ``last``, ``window``:
        the backend's."""
        size = o.padded_window_size
        if _fbank_kernels is None or size < 4 or size & (size - 1):
            return None
        starts, lengths, weights = [], [], []
        for row in banks[:, first:last]:
            used = np.flatnonzero(row)
            starts.append(int(used[0]))
            lengths.append(int(used[-1]) + 1 - int(used[0]))
            weights.append(row[used[0]:used[-1] + 1])
        return cls(o, first, last, starts, lengths, np.concatenate(weights), window)

    def __init__(self, o, first, last, starts, lengths, weights, window):
        self.size, self.shift, self.padded = o.window_size, o.window_shift, o.padded_window_size
        self.first, self.last = first, last
        half = self.padded // 2  # at least 2, a power of two
        bits = half.bit_length() - 1
        self.bitrev = np.array([int(format(k, f"0{bits}b")[::-1], 2) for k in range(half)], np.int32)
        # twiddles in double, rounded once: exp(-2 pi i k / half), k < half / 2; exp(-2 pi i k / padded)
        angle = -2 * math.pi * np.arange(half // 2) / half
        self.twiddle = np.stack([np.cos(angle), np.sin(angle)], 1).astype(np.float32).ravel()
        angle = -2 * math.pi * np.arange(first, last) / self.padded
        self.split = np.stack([np.cos(angle), np.sin(angle)], 1).astype(np.float32).ravel()
        self.starts, self.lengths = np.array(starts, np.int32), np.array(lengths, np.int32)
        self.weights = np.ascontiguousarray(weights, np.float32)
        self.num_bins = len(starts)
        self.window = np.ascontiguousarray(window, np.float32)
        self.remove_dc, self.preemph, self.dither = o["remove-dc-offset"], o["preemphasis-coefficient"], o["dither"]
        self.use_power = o.kind == "mfcc" or o["use-power"]
        self.energy_mode = (1 if o["raw-energy"] else 2) if o["use-energy"] else 0
        self.empty = np.empty(0, np.float32)

    def __call__(self, samples, count, rng):
        """(mel (count, bins), energy (count,) or None) of ``count`` frames of ``samples``
        (contiguous float32, frame i from sample i * shift)."""
        mel = np.empty((count, self.num_bins), np.float32)
        energy = np.empty(count, np.float32) if self.energy_mode else self.empty
        noise = (rng.standard_normal((count, self.size), dtype=np.float32) if self.dither != 0
                 else self.empty)
        _fbank_kernels.mel_spectra(samples, noise, self.window, self.bitrev, self.twiddle,
                                   self.split, self.starts, self.lengths, self.weights, mel, energy,
                                   count, self.size, self.shift, self.padded, self.first,
                                   self.last, int(self.remove_dc), int(self.use_power),
                                   self.energy_mode, float(self.preemph), float(self.dither))
        return mel, (energy if self.energy_mode else None)
