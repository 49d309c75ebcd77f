"""The GE2E speaker encoder's front end, as resemblyzer 0.1.4 computes it, in numpy.

Facts read off resemblyzer (hparams.py, audio.py, voice_encoder.py):
- 16 kHz audio as floats in [-1, 1]; volume normalised to -30 dBFS, raised only (a louder
  wave is left alone), with rms and dBFS taken on the int16 scale 32767.
- librosa's ``melspectrogram`` with its defaults: centred 400-sample (25 ms) periodic Hann
  frames every 160 samples (10 ms), zero padding of 200 at both ends (librosa >= 0.10's
  ``pad_mode="constant"``), power 2, 40 Slaney mel filters (``htk=False, norm="slaney"``)
  from 0 to 8 kHz. Not a log-mel: the encoder reads mel power.
- Partial utterances of 160 mel frames (1.6 s), one every round(16000 / 1.3 / 160) = 77 frames
  (0.77 s); the last one is dropped when it covers less than 75% of its window with audio
  (unless it is the only one); the wave is zero-padded up to the last window's end.
- ``preprocess_wav`` trims long silences: webrtcvad (mode 3) on 30 ms windows of the
  volume-normalised wave rounded to int16, a centred moving average over 8 windows rounded to a
  0/1 mask, dilated by 7 windows; the trailing part shorter than one window is always cut.
"""

import math

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s per partial utterance
INT16_MAX = 32767  # resemblyzer's int16 scale for dBFS and for the VAD's PCM
TARGET_DBFS = -30.0
VAD_WINDOW = 480  # 30 ms at 16 kHz
VAD_AVERAGE_WIDTH = 8
VAD_MAX_SILENCE = 6  # windows; the mask is dilated by VAD_MAX_SILENCE + 1


# --- mel filters: Slaney's auditory-toolbox mel scale and area normalisation (librosa's default)
_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz):
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    above = hz >= _MIN_LOG_HZ
    return np.where(above, _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP, mel)


def mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    hz = _F_SP * mel
    above = mel >= _MIN_LOG_MEL
    return np.where(above, _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL)), hz)


def mel_filters(sample_rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS):
    """(n_mels, n_fft // 2 + 1) float32 triangular filters, each scaled to unit area (2 / width in Hz)."""
    fft_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(edges)
    distance = edges[:, None] - fft_hz[None, :]  # edge minus bin frequency
    filters = np.zeros((n_mels, len(fft_hz)), dtype=np.float32)
    for m in range(n_mels):
        rising = -distance[m] / widths[m]
        falling = distance[m + 2] / widths[m + 1]
        filters[m] = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # in place, float32, as librosa does
    return filters


def mel_power(wave, num_frames, filters, block=4096):
    """(num_frames, n_mels) float32 mel power of ``wave`` ([-1, 1] floats) in centred frames.

    Frame j covers samples [160·j − 200, 160·j + 200), zeros outside the wave, so any frame
    depends on the audio alone (never on how far the wave was padded). Computed in blocks of
    frames to bound memory on long recordings.
    """
    half = N_FFT // 2
    needed = HOP * (num_frames - 1) + N_FFT
    padded = np.zeros(max(needed, half + len(wave)), dtype=np.float64)
    padded[half:half + len(wave)] = wave
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    frames = np.lib.stride_tricks.sliding_window_view(padded[:needed], N_FFT)[::HOP]
    out = np.empty((num_frames, filters.shape[0]), dtype=np.float32)
    for start in range(0, num_frames, block):
        spectrum = np.fft.rfft(frames[start:start + block] * window, axis=1)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        out[start:start + block] = power @ filters.T.astype(np.float64)
    return out


# --- partial utterances
def partial_step(rate):
    """Mel frames between partial utterances for ``rate`` partials per second (77 at 1.3)."""
    step = int(np.round(SAMPLE_RATE / rate / HOP))
    if not 0 < step <= PARTIAL_FRAMES:
        raise ValueError(f"rate {rate}: partials would be {step} frames apart (need 1..{PARTIAL_FRAMES})")
    return step


def num_partials(num_samples, step, min_coverage):
    """How many partial utterances resemblyzer's ``compute_partial_slices`` makes (at least 1)."""
    mel_frames = num_samples // HOP + 1  # ceil((num_samples + 1) / HOP)
    count = -(-max(1, mel_frames - PARTIAL_FRAMES + step + 1) // step)
    last_start = (count - 1) * step * HOP
    coverage = (num_samples - last_start) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and count > 1:
        count -= 1
    return count


# --- preprocess_wav: volume and silence
def normalize_volume(wave, target_dbfs=TARGET_DBFS):
    """``wave`` ([-1, 1] floats) raised to ``target_dbfs`` if quieter; louder waves unchanged.

    An all-zero wave has no level and stays as it is (resemblyzer would turn it into NaNs).
    """
    rms = math.sqrt(float(np.mean(np.square(wave * INT16_MAX, dtype=np.float64))))
    if rms == 0.0:
        return wave
    change_db = target_dbfs - 20.0 * math.log10(rms / INT16_MAX)
    if change_db < 0:
        return wave
    return (wave * 10.0 ** (change_db / 20.0)).astype(np.float32)


def speech_mask(voice_flags, width=VAD_AVERAGE_WIDTH, max_silence=VAD_MAX_SILENCE):
    """Per-window keep mask from per-window VAD decisions (bools).

    A window is voiced when the centred moving average of ``width`` decisions (window i averages
    decisions i − (width−1)//2 … i + width//2, zeros beyond the ends) rounds to 1 — numpy rounds
    halves to even, so 4 of 8 is not enough); then the mask is dilated by a centred run of
    ``max_silence + 1`` windows, so silences of up to ``max_silence`` windows survive.
    """
    flags = np.asarray(voice_flags, dtype=np.int64)
    counts = np.convolve(flags, np.ones(width, dtype=np.int64))[width // 2:width // 2 + len(flags)]
    voiced = np.round(counts / width).astype(np.int64)
    span = max_silence + 1
    dilated = np.convolve(voiced, np.ones(span, dtype=np.int64))[span // 2:span // 2 + len(flags)]
    return dilated > 0


def webrtc_voice_flags(wave):
    """webrtcvad's mode-3 decision on each whole 30 ms window of ``wave`` ([-1, 1] floats)."""
    try:
        import webrtcvad
    except ImportError:
        raise ImportError("trim_silence needs webrtcvad (the VAD resemblyzer uses): "
                          "pip install webrtcvad (a C compiler builds it) or pip install webrtcvad-wheels") from None
    usable = len(wave) - len(wave) % VAD_WINDOW
    # np.round then int16, as resemblyzer does (a raised wave may exceed int16: it wraps there too)
    pcm = np.round(wave[:usable] * INT16_MAX).astype(np.int16)
    vad = webrtcvad.Vad(3)
    return [vad.is_speech(pcm[i:i + VAD_WINDOW].tobytes(), SAMPLE_RATE) for i in range(0, usable, VAD_WINDOW)]


def trim_long_silences(wave, voice_flags=None):
    """``wave`` without silences longer than resemblyzer keeps, as ``trim_long_silences`` does.

    voice_flags: one VAD decision per whole 30 ms window (default: webrtcvad's).
    """
    if voice_flags is None:
        voice_flags = webrtc_voice_flags(wave)
    usable = len(voice_flags) * VAD_WINDOW
    keep = np.repeat(speech_mask(voice_flags), VAD_WINDOW)
    return wave[:usable][keep]
