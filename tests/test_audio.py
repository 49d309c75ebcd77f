"""Audio from wav.scp entries: paths, pipes, ark:offset, segments, channels, sample rates."""

import struct

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from conftest import golden_wav, golden_wave
from speech_reps.errors import AudioError
from speech_reps.kaldi import AudioLoader, Utterance

UTT = "spk1-utt1"


def streamed_wav(path, samples, rate):
    """A wav as programs write it to a pipe: RIFF and data sizes unknown (0xFFFFFFFF)."""
    header = (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
              + b"data" + struct.pack("<I", 0xFFFFFFFF))
    path.write_bytes(header + samples.astype(np.int16).tobytes())
    return path


def load(rxfile, utt=UTT, rec=None, **kwargs):
    return AudioLoader(16000, **kwargs).load(Utterance(utt, rec or utt, str(rxfile)))


def test_plain_wav_at_int16_scale():
    wave = load(golden_wav(UTT))
    assert wave.dtype == np.float32 and wave.shape == (51278,)
    assert np.array_equal(wave, golden_wave(UTT))  # 16-bit integers come back exactly


def test_flac_file(tmp_path):
    sf.write(tmp_path / "a.flac", golden_wave(UTT).astype(np.int16), 16000, subtype="PCM_16")
    assert np.array_equal(load(tmp_path / "a.flac"), golden_wave(UTT))


def test_pipe_with_streamed_header(tmp_path):
    streamed_wav(tmp_path / "s.wav", golden_wave(UTT), 16000)
    assert np.array_equal(load(f"cat {tmp_path}/s.wav |"), golden_wave(UTT))


def test_failing_pipe_names_utterance_and_cause():
    with pytest.raises(AudioError, match=r"utterance u1 \(cat /no/such.wav \|\): command exited with code 1: .*No such file"):
        load("cat /no/such.wav |", utt="u1")


def test_ark_offset_entry(tmp_path):
    ark = tmp_path / "wav.ark"
    kaldiio.save_ark(str(ark), {"a": (16000, golden_wave("spk3-short").astype(np.int16)),
                                UTT: (16000, golden_wave(UTT).astype(np.int16))},
                     scp=str(tmp_path / "wav_ark.scp"))
    rxfile = (tmp_path / "wav_ark.scp").read_text().splitlines()[1].split()[1]
    assert rxfile.startswith(str(ark) + ":")
    assert np.array_equal(load(rxfile), golden_wave(UTT))


def test_undecodable_file(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match=r"utterance spk1-utt1 \(.*junk\.wav\): cannot decode file as audio"):
        load(tmp_path / "junk.wav")


def test_segments_follow_extract_segments():
    rx = str(golden_wav(UTT))  # 51278 samples = 3.204875 s
    loader = AudioLoader(16000)
    whole = golden_wave(UTT)
    seg = loader.load(Utterance("s1", "rec", rx, 0.5, 1.25))
    assert np.array_equal(seg, whole[8000:20000])
    to_end = loader.load(Utterance("s2", "rec", rx, 3.0, -1))
    assert np.array_equal(to_end, whole[48000:])
    overshoot = loader.load(Utterance("s3", "rec", rx, 3.0, 3.5))  # < 0.5 s past the end: clipped
    assert len(overshoot) == 51278 - 48000
    assert loader.reads == 1  # the recording was read once for its three segments
    with pytest.raises(AudioError, match="more than 0.5s after the recording's end"):
        loader.load(Utterance("s4", "rec", rx, 3.0, 3.8))
    with pytest.raises(AudioError, match="shorter than 0.1s"):
        loader.load(Utterance("s5", "rec", rx, 1.0, 1.05))


def test_other_sample_rate_is_an_error_unless_resampling_allowed(tmp_path):
    sf.write(tmp_path / "a8k.wav", golden_wave(UTT)[::2].astype(np.int16), 8000)
    with pytest.raises(AudioError, match=r"utterance spk1-utt1 .*sample rate 8000 Hz, the front end expects 16000 Hz"):
        load(tmp_path / "a8k.wav")
    wave = load(tmp_path / "a8k.wav", allow_resample=True)
    assert wave.shape == (51278,)
    wave = load(tmp_path / "a8k.wav", allow_upsample=True)  # Kaldi's --allow-upsample
    assert wave.shape == (51278,)
    with pytest.raises(AudioError, match="sample rate"):
        load(tmp_path / "a8k.wav", allow_downsample=True)


def test_multichannel_needs_channel(tmp_path):
    left, right = golden_wave(UTT), golden_wave("spk2-utt1")[:51278]
    right = np.pad(right, (0, 51278 - len(right)))
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1).astype(np.int16), 16000)
    with pytest.raises(AudioError, match="audio has 2 channels; choose one with --channel N"):
        load(tmp_path / "st.wav")
    assert np.array_equal(load(tmp_path / "st.wav", channel=1), right)
    with pytest.raises(AudioError, match="channel 2 requested, audio has 2"):
        load(tmp_path / "st.wav", channel=2)
    # a segments file's 5th field picks the channel too
    seg = AudioLoader(16000).load(Utterance("s", "rec", str(tmp_path / "st.wav"), 0.0, 1.0, channel=0))
    assert np.array_equal(seg, left[:16000])
