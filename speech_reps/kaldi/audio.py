"""Audio of Kaldi data dirs at Kaldi's int16 scale: plain files, ``cmd |`` pipes, ``file.ark:offset``.

- Plain paths: anything soundfile (libsndfile) reads: wav, flac, ogg, ...
- ``cmd |``: run with /bin/sh as Kaldi's popen does (wav.scp is trusted input, as in Kaldi: its
  commands run as they are); a non-zero exit or no output is an error (kaldiio would
  ignore it), and the bytes are decoded by soundfile. A command that runs longer than the pipe
  timeout, or writes more than ``max_pipe_bytes`` (the longest audio we accept), is killed
  with its process group and fails that utterance.
- ``file.ark:offset``: the wav stored in the archive at that offset, decoded as a file is.

A container that declares more audio than it holds (a truncated WAV, FLAC, MP3, ...) is an
error, as in Kaldi's wave reader, rather than a silently shorter utterance; a WAV streamed with
unknown sizes (0xFFFFFFFF, or 0x7FFFF000 and up as streaming writers' placeholders) is read to its
end. MPEG audio is accepted only with an ID3 tag or a chain of consistent frame headers: libsndfile
otherwise "recognises" headerless PCM that happens to start like an MPEG frame, and decodes noise.

Samples are scaled to int16 range (a 16-bit file gives its integers exactly). Kaldi itself reads
8- and 32-bit PCM without rescaling; we bring every format to the int16 scale the models expect.
Segments follow Kaldi's extract-segments: sample indices truncate ``time * rate``, an end up to
0.5 s past the recording is clipped, shorter than 0.1 s is rejected. Resampling uses soxr (the
libsoxr binding, the resampler librosa and torchaudio's sox backend build on).
"""

import io
import math
import os
import re
import selectors
import signal
import subprocess
import time

import numpy as np

from speech_reps.errors import AudioError
from speech_reps.kaldi.containers import declared_frames, looks_like_mpeg, wav_entry_size
from speech_reps.kaldi.datadir import rxfile_kind, rxfile_path, rxfile_problem

MAX_OVERSHOOT = 0.5  # seconds, extract-segments --max-overshoot
MIN_SEGMENT_LENGTH = 0.1  # seconds, extract-segments --min-segment-length
INT16_SCALE = 32768.0
DEFAULT_PIPE_TIMEOUT = 600.0  # seconds a ``cmd |`` may run for one recording
LONGEST_PIPE_AUDIO = 12 * 3600  # seconds: the longest recording a pipe may deliver ...
PIPE_BYTES_PER_SAMPLE = 4  # ... at the front end's rate, in 32-bit samples (or 2 16-bit channels)
_HEAD = 1 << 16  # bytes of a file read to check its header


def pipe_byte_cap(rate):
    """The most bytes one ``cmd |`` may write: LONGEST_PIPE_AUDIO at ``rate`` (2.8 GB at 16 kHz)."""
    return int(LONGEST_PIPE_AUDIO * rate * PIPE_BYTES_PER_SAMPLE)


class _ReadError(Exception):
    pass


def read_rxfile(rxfile, timeout=DEFAULT_PIPE_TIMEOUT, max_bytes=None):
    """(rate, samples[N, C] float32 at int16 scale) of a wav.scp entry; raises _ReadError.
    ``timeout`` (seconds) and ``max_bytes`` bound a ``cmd |``."""
    kind = rxfile_kind(rxfile)
    if kind == "pipe":
        returncode, out, err = run_pipe(rxfile[:-1], timeout, max_bytes)
        if returncode != 0:
            err = err.decode(errors="replace").strip().splitlines()
            raise _ReadError(f"command exited with code {returncode}"
                             + (f": {err[-1]}" if err else ""))
        if not out:
            raise _ReadError("command produced no output")
        return _decode(io.BytesIO(out), "pipe output", bytes(out[:_HEAD]), len(out))
    problem = rxfile_problem(rxfile)
    if problem:
        raise _ReadError(problem)
    if kind == "ark":
        return _read_archive_wav(rxfile)
    try:
        with open(rxfile, "rb") as f:
            head = f.read(_HEAD)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise _ReadError(f"cannot read {rxfile}: {e.strerror}") from None
    return _decode(rxfile, "file", head, size)


def _read_archive_wav(rxfile):
    """(rate, samples) of the WAV that ``file.ark:offset`` points at (as wav-copy and kaldiio
    store them: the WAV's bytes right after the key), decoded as a file is: the entry ends where
    its data chunk says, and an archive cut short within it is a truncated WAV."""
    path, offset = rxfile_path(rxfile), int(rxfile.rpartition(":")[2])
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            head = f.read(_HEAD)
            size = wav_entry_size(head)
            if size is None:
                if head[:2] == b"\0B" or head[:1] == b"[":
                    raise _ReadError(f"the entry at offset {offset} of {path} is a matrix, not a wav")
                raise _ReadError(f"no wav at offset {offset} of {path} (a wav in an archive starts "
                                 "with RIFF....WAVE): is the offset that of the entry's data?")
            if size == 0:
                raise _ReadError(f"the wav at offset {offset} of {path} has no data chunk in its first "
                                 f"{_HEAD} bytes, or one of unknown size: its end in the archive is unknown")
            data = head[:size] if size <= len(head) else head + f.read(size - len(head))
    except OSError as e:
        raise _ReadError(f"cannot read {path}: {e.strerror}") from None
    return _decode(io.BytesIO(data), "archive entry", data[:_HEAD], len(data))


def run_pipe(command, timeout, max_bytes=None):
    """(exit code, stdout, the last 64 KiB of stderr) of a shell command, or _ReadError when it
    runs longer than ``timeout`` seconds or writes more than ``max_bytes``: then its whole
    process group is killed (a ``cmd |`` that never ends must not hang the job, nor one that never
    stops writing exhaust its memory)."""
    proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    out, err = bytearray(), bytearray()
    stdout_ended = False
    deadline = time.monotonic() + timeout
    too_slow = f"command did not finish within --pipe-timeout {timeout:g} s; killed"
    with selectors.DefaultSelector() as selector:
        try:
            selector.register(proc.stdout, selectors.EVENT_READ, out)
            selector.register(proc.stderr, selectors.EVENT_READ, err)
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _ReadError(too_slow)
                # Once stdout has ended, the command is done when its shell has exited, as for
                # Kaldi's popen: a child it left in the background may hold stderr open for long.
                if stdout_ended and proc.poll() is not None:
                    events = selector.select(0)  # what the shell wrote before it exited, then done
                    for key, _ in events:
                        err += os.read(key.fd, 1 << 20)
                        del err[:-65536]
                    break
                events = selector.select(min(left, 0.05) if stdout_ended else left)
                for key, _ in events:
                    chunk = os.read(key.fd, 1 << 20)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        stdout_ended = stdout_ended or key.data is out
                    elif key.data is out:
                        out += chunk
                        if max_bytes is not None and len(out) > max_bytes:
                            raise _ReadError(
                                f"command wrote more than {max_bytes / 1e9:.3g} GB, more than the longest "
                                f"audio accepted from a pipe ({LONGEST_PIPE_AUDIO / 3600:g} h); killed")
                    else:
                        err += chunk
                        del err[:-65536]
            try:
                returncode = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise _ReadError(too_slow) from None
        finally:
            if proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
    return returncode, out, bytes(err)


# lines of libsndfile's log that say a container declares more than the file holds
_DECLARED_MORE = re.compile(r"^\s*(SSND|Data Size|data|riff)\s*:.*\(should be \d+\)$"
                            r"|^\*\*\* .*frame count.*(not equal|does not match)"
                            r"|^Ogg ?: (File ended unexpectedly|Last page lacks an end-of-stream)", re.M)


_ADD_HEADER = "give the audio a header, e.g. with sox -t raw -r RATE -e signed -b 16 -c 1 in.raw -t wav -"


def _read_blocks(f, block=1 << 20):
    blocks = []
    while True:
        samples = f.read(block, dtype="float32", always_2d=True)
        if not len(samples):
            break
        blocks.append(samples)
    return np.concatenate(blocks) if blocks else np.zeros((0, f.channels), np.float32)


def _decode(source, what, head, size):
    """(rate, samples) of audio ``source`` (a path or a file object) of ``size`` bytes."""
    import soundfile

    try:
        with soundfile.SoundFile(source) as f:
            if f.format == "MP3" and not looks_like_mpeg(head):
                raise _ReadError(f"cannot decode {what} as audio: no audio header that libsndfile "
                                 f"recognises (it could only guess MPEG, as it does for headerless PCM); {_ADD_HEADER}")
            declared, log, rate = f.frames, f.extra_info, f.samplerate
            if rate <= 0:
                raise _ReadError(f"cannot decode {what} as audio: its header gives a sample rate of {rate} Hz")
            if declared * f.channels * 4 <= 64 * size + (1 << 20):
                samples = f.read(dtype="float32", always_2d=True)
            else:  # a header claiming far more than the file could hold: allocate only what decodes
                samples = _read_blocks(f)
    except TypeError:  # soundfile's for a '.raw' name: raw PCM needs a rate and sample format
        raise _ReadError(f"cannot decode {what} as audio: headerless PCM ('.raw') has no sample rate or "
                         f"format; {_ADD_HEADER}") from None
    except soundfile.LibsndfileError as e:  # libsndfile's own words, without the file object's repr
        raise _ReadError(f"cannot decode {what} as audio: {e.error_string}") from None
    except (RuntimeError, OSError, MemoryError) as e:
        raise _ReadError(f"cannot decode {what} as audio: {e}") from None
    own = declared_frames(head)
    if own is not None:  # libsndfile clamps a WAV's or SPHERE's size to the file: our own reading
        declared = own
    elif _DECLARED_MORE.search(log):  # it clamped another container's, and logged it
        raise _ReadError(f"truncated {what}: the header declares more audio than the {len(samples) / rate:.3f} s "
                         f"it holds (libsndfile: {_DECLARED_MORE.search(log)[0].strip()})")
    if len(samples) < declared:
        raise _ReadError(f"truncated {what}: the header declares {_duration(declared, rate)} of audio, "
                         f"the data holds {_duration(len(samples), rate)}")
    return int(rate), samples * np.float32(INT16_SCALE)


def _duration(frames, rate):
    return f"{frames} samples ({frames / rate:.3f} s)"


class AudioLoader:
    """Loads utterances of a DataDir as 1-D float32 waves at ``rate``.

    Each recording is read once while its segments are processed in order (a one-recording cache).
    """

    def __init__(self, rate, allow_resample=False, allow_downsample=False, allow_upsample=False,
                 channel=None, pipe_timeout=DEFAULT_PIPE_TIMEOUT, max_pipe_bytes=None):
        self.rate = rate
        self.pipe_timeout = pipe_timeout
        self.max_pipe_bytes = max_pipe_bytes if max_pipe_bytes is not None else pipe_byte_cap(rate)
        self.allow_down = allow_resample or allow_downsample
        self.allow_up = allow_resample or allow_upsample
        self.channel = channel
        self._cached = (None, None)
        self.reads = 0  # recordings read so far (tests check the cache with it)

    def load(self, utt):
        """The utterance's samples; AudioError names the utterance, its source and the cause."""
        try:
            rate, samples = self._recording(utt.rxfile)
            if utt.is_cut:  # also a segment whose id is its recording's
                samples = self._segment(samples, rate, utt)
            samples = self._pick_channel(samples, utt)
            return self._to_rate(samples, rate)
        except _ReadError as e:
            raise AudioError(utt.utt, utt.source, str(e)) from None

    def _recording(self, rxfile):
        if self._cached[0] != rxfile:
            self._cached = (None, None)  # drop the old recording before reading the next
            self._cached = (rxfile, read_rxfile(rxfile, self.pipe_timeout, self.max_pipe_bytes))
            self.reads += 1
        return self._cached[1]

    @staticmethod
    def _segment(samples, rate, utt):
        n = len(samples)
        if not (math.isfinite(utt.start) and math.isfinite(utt.end)):
            raise _ReadError(f"invalid segment: times {utt.start:g}..{utt.end:g} must be finite numbers")
        if utt.start < 0:
            raise _ReadError(f"invalid segment: start {utt.start:g}s is before the recording's start")
        if utt.end != -1 and utt.end <= utt.start:
            raise _ReadError(f"invalid segment: end {utt.end:g}s is not after start {utt.start:g}s")
        beyond = n / rate + 2 * MAX_OVERSHOOT  # a time past this fails below; so huge ones cannot overflow
        start = int(min(utt.start, beyond) * rate)
        end = n if utt.end == -1 else int(min(utt.end, beyond) * rate)
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
