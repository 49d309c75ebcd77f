"""fbank / MFCC on the CPU, vectorised with numpy (--fbank-backend numpy, the CPU default).

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
from speech_reps.frontend.torch_backend import (FLT_EPSILON, dct_matrix, lifter_coeffs, mel_banks,
                                                window_function)

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

    def compute(self, key, wave):
        """Features (T, D) float32 of one utterance; ``wave`` is 1-D at int16 scale."""
        wave = np.asarray(wave, dtype=np.float32)
        count = self.options.num_frames(len(wave))
        out = np.empty((count, self.options.dim), dtype=np.float32)
        if count == 0:
            return out
        frames = self._frames(wave, count)
        starts = range(0, count, BLOCK_FRAMES)
        if self.threads and count > BLOCK_FRAMES:  # blocks are independent: any order, same output
            list(_threads().map(lambda s: self._block(frames[s:s + BLOCK_FRAMES], out[s:s + BLOCK_FRAMES]), starts))
        else:
            for s in starts:
                self._block(frames[s:s + BLOCK_FRAMES], out[s:s + BLOCK_FRAMES])
        if self.options["subtract-mean"]:
            out -= out.mean(axis=0, dtype=np.float64).astype(np.float32)
        return out

    # --- the computation -----------------------------------------------------------------
    def _frames(self, wave, count):
        """(count, window) view of the frames, with Kaldi's edge reflection without snip-edges."""
        needed = (count - 1) * self.shift + self.size
        if not self.options["snip-edges"]:
            offset = self.size // 2 - self.shift // 2
            index = np.arange(needed) - offset
            n = len(wave)
            while True:  # Kaldi reflects repeatedly (only a tiny utterance needs more than once)
                low, high = index < 0, index >= n
                if not (low.any() or high.any()):
                    break
                index = np.where(low, -index - 1, np.where(high, 2 * n - 1 - index, index))
            wave = wave[index]
        view = np.lib.stride_tricks.sliding_window_view(wave[:needed], self.size)
        return view[::self.shift]

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

    def _block(self, frames, out):
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
                energy = _log_energy(x)
            if c != 0:
                x[:, 1:] -= c * x[:, :-1]  # the right side is computed first, from the old values
                x[:, 0] *= 1 - c
            x *= self.window
            if o["use-energy"] and not o["raw-energy"]:
                energy = _log_energy(x)
            x = padded
        # |X|^2 of the bins the banks use: the complex values as (re, im) pairs of float32
        # (x holds the zero padding already: rfft's own padding would be one more copy)
        pairs = np.fft.rfft(x).view(np.float32)[:, 2 * self.first:2 * self.last]
        pairs = pairs * pairs
        power = pairs[:, 0::2]
        power += pairs[:, 1::2]
        if o.kind == "fbank" and not o["use-power"]:
            np.sqrt(power, out=power)
        mel = self.mel(power)
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


def _log_energy(x):
    energy = np.einsum("ij,ij->i", x, x)
    np.maximum(energy, FLT_EPSILON, out=energy)
    return np.log(energy, out=energy)
