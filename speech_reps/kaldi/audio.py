"""Audio of Kaldi data dirs at Kaldi's int16 scale: plain files, ``cmd |`` pipes, ``file.ark:offset``.

- Plain paths: anything soundfile (libsndfile) reads: wav, flac, ogg, ...
- ``cmd |``: run with /bin/sh as Kaldi's popen does (wav.scp is trusted input, as in Kaldi: its
  commands run as they are); a non-zero exit or no output is an error (kaldiio would
  ignore it), and the bytes are decoded by soundfile.
- ``file.ark:offset``: kaldiio reads the wav stored in the archive.

Samples are scaled to int16 range (a 16-bit file gives its integers exactly). Kaldi itself reads
8- and 32-bit PCM without rescaling; we bring every format to the int16 scale the models expect.
Segments follow Kaldi's extract-segments: sample indices truncate ``time * rate``, an end up to
0.5 s past the recording is clipped, shorter than 0.1 s is rejected. Resampling uses soxr (the
libsoxr binding, the resampler librosa and torchaudio's sox backend build on).
"""

import io
import os
import subprocess

import numpy as np

from speech_reps.errors import AudioError
from speech_reps.kaldi.datadir import rxfile_kind

MAX_OVERSHOOT = 0.5  # seconds, extract-segments --max-overshoot
MIN_SEGMENT_LENGTH = 0.1  # seconds, extract-segments --min-segment-length
INT16_SCALE = 32768.0


class _ReadError(Exception):
    pass


def read_rxfile(rxfile):
    """(rate, samples[N, C] float32 at int16 scale) of a wav.scp entry; raises _ReadError."""
    kind = rxfile_kind(rxfile)
    if kind == "pipe":
        proc = subprocess.run(rxfile[:-1], shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise _ReadError(f"command exited with code {proc.returncode}"
                             + (f": {err[-1]}" if err else ""))
        if not proc.stdout:
            raise _ReadError("command produced no output")
        return _decode(io.BytesIO(proc.stdout), "pipe output")
    if kind == "ark":
        import kaldiio

        try:
            obj = kaldiio.load_mat(rxfile)
        except Exception as e:  # kaldiio raises assorted types on a bad offset
            raise _ReadError(f"cannot read audio from archive: {e}") from None
        if not (isinstance(obj, tuple) and len(obj) == 2):
            raise _ReadError("archive entry is not audio (a matrix, not a wav)")
        rate, samples = obj
        samples = np.asarray(samples)
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32)
        elif samples.dtype == np.uint8:  # 8-bit wav is unsigned
            samples = (samples.astype(np.float32) - 128.0) * 256.0
        else:
            samples = samples.astype(np.float32) * INT16_SCALE
        return int(rate), samples.reshape(len(samples), -1)
    if not os.path.isfile(rxfile):
        raise _ReadError(f"file not found: {rxfile}")
    return _decode(rxfile, "file")


def _decode(source, what):
    import soundfile

    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise _ReadError(f"cannot decode {what} as audio: {e}") from None
    return int(rate), samples * np.float32(INT16_SCALE)


class AudioLoader:
    """Loads utterances of a DataDir as 1-D float32 waves at ``rate``.

    Each recording is read once while its segments are processed in order (a one-recording cache).
    """

    def __init__(self, rate, allow_resample=False, allow_downsample=False, allow_upsample=False,
                 channel=None):
        self.rate = rate
        self.allow_down = allow_resample or allow_downsample
        self.allow_up = allow_resample or allow_upsample
        self.channel = channel
        self._cached = (None, None)
        self.reads = 0  # recordings read so far (tests check the cache with it)

    def load(self, utt):
        """The utterance's samples; AudioError names the utterance, its source and the cause."""
        try:
            rate, samples = self._recording(utt.rxfile)
            if utt.utt != utt.rec:
                samples = self._segment(samples, rate, utt)
            samples = self._pick_channel(samples, utt)
            return self._to_rate(samples, rate)
        except _ReadError as e:
            raise AudioError(utt.utt, utt.source, str(e)) from None

    def _recording(self, rxfile):
        if self._cached[0] != rxfile:
            self._cached = (None, None)  # drop the old recording before reading the next
            self._cached = (rxfile, read_rxfile(rxfile))
            self.reads += 1
        return self._cached[1]

    @staticmethod
    def _segment(samples, rate, utt):
        n = len(samples)
        if utt.start < 0 or (utt.end != -1 and utt.end <= utt.start):
            raise _ReadError(f"invalid segment: end {utt.end:g}s is not after start {utt.start:g}s")
        start = int(utt.start * rate)
        end = n if utt.end == -1 else int(utt.end * rate)
        if start >= n:
            raise _ReadError(f"segment starts at {utt.start:g}s, after the recording's end ({n / rate:g}s)")
        if end > n:
            if end >= n + int(MAX_OVERSHOOT * rate):
                raise _ReadError(f"segment ends at {utt.end:g}s, more than {MAX_OVERSHOOT}s after "
                                 f"the recording's end ({n / rate:g}s)")
            end = n
        if end <= start + int(MIN_SEGMENT_LENGTH * rate):
            raise _ReadError(f"segment shorter than {MIN_SEGMENT_LENGTH}s")
        return samples[start:end]

    def _pick_channel(self, samples, utt):
        channel = utt.channel if utt.channel is not None else self.channel
        channels = samples.shape[1]
        if channel is None or channel == -1:
            if channels != 1:
                raise _ReadError(f"audio has {channels} channels; choose one with --channel N")
            channel = 0
        if channel >= channels:
            raise _ReadError(f"channel {channel} requested, audio has {channels}")
        return np.ascontiguousarray(samples[:, channel])

    def _to_rate(self, wave, rate):
        if rate == self.rate:
            return wave
        if (rate > self.rate and not self.allow_down) or (rate < self.rate and not self.allow_up):
            raise _ReadError(f"sample rate {rate} Hz, the front end expects {self.rate} Hz "
                             "(resample the data, or pass --allow-resample true)")
        import soxr

        return soxr.resample(wave, rate, self.rate, quality="HQ").astype(np.float32)
