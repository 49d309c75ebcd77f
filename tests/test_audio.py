"""Audio from wav.scp entries: paths, pipes, ark:offset, segments, channels, sample rates."""

import struct
import time

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


def test_archive_entry_cut_short_wrong_offset_or_matrix(tmp_path):
    """A wav in an archive reads as a file does: cut short within it, it is a truncated wav (not a
    shorter utterance); an offset that is not a wav's says so in one line; a matrix is named."""
    ark = tmp_path / "wav.ark"
    kaldiio.save_ark(str(ark), {"a": (16000, golden_wave("spk3-short").astype(np.int16)),
                                UTT: (16000, golden_wave(UTT).astype(np.int16))}, scp=str(tmp_path / "wav.scp"))
    offset = int((tmp_path / "wav.scp").read_text().splitlines()[1].split(":")[-1])
    whole = ark.read_bytes()
    cut = tmp_path / "cut.ark"
    cut.write_bytes(whole[:offset + 60000])  # 102,556 bytes of samples declared, 59,956 there
    with pytest.raises(AudioError, match=r"^utterance spk1-utt1 \(.*cut.ark:\d+\): truncated archive entry: the "
                                         r"header declares 51278 samples \(3.205 s\) of audio, the data holds 29978"):
        load(f"{cut}:{offset}")
    for wrong in (offset + 1000, offset - 5, 0):  # in the samples, in the key, at the key
        with pytest.raises(AudioError, match=rf"^utterance spk1-utt1 \(.*\): no wav at offset {wrong} of {ark} "
                                             r"\(a wav in an archive starts with RIFF....WAVE\): is the offset"):
            load(f"{ark}:{wrong}")
    kaldiio.save_ark(str(tmp_path / "m.ark"), {"m": np.zeros((3, 4), np.float32)}, scp=str(tmp_path / "m.scp"))
    rxfile = (tmp_path / "m.scp").read_text().split()[1]
    with pytest.raises(AudioError, match=r"is a matrix, not a wav$"):
        load(rxfile)


def test_a_cause_is_one_printable_line():
    """What a library or command says may run over lines or hold raw bytes; the cause goes where a
    line is a record (log, failed table, journal)."""
    e = AudioError("b", "x.ark:5", "cannot read: \x00\x01is not a digit\nFile format is wrong?\r\n\tend")
    assert e.cause == "cannot read: \\x00\\x01is not a digit; File format is wrong?; end"
    assert str(e) == f"utterance b (x.ark:5): {e.cause}"


def test_undecodable_file(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match=r"utterance spk1-utt1 \(.*junk\.wav\): cannot decode file as audio: "
                                         r"Format not recognised\.$"):
        load(tmp_path / "junk.wav")
    with pytest.raises(AudioError, match=r"\): cannot decode pipe output as audio: Format not recognised\.$"):
        load("echo garbage |")


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


def test_pipe_that_never_ends_is_killed_at_the_timeout():
    import time

    started = time.monotonic()
    with pytest.raises(AudioError, match=r"utterance u1 \(sleep 30; cat x \|\): command did not finish within "
                                         r"--pipe-timeout 0.5 s; killed"):
        AudioLoader(16000, pipe_timeout=0.5).load(Utterance("u1", "u1", "sleep 30; cat x |"))
    assert time.monotonic() - started < 20  # the shell and its sleep were killed, not waited for


def test_pipe_done_when_its_shell_exits_though_a_background_child_holds_stderr():
    """As Kaldi's popen: the audio is read when stdout ends and the shell has exited; a child left
    running in the background with stderr open does not hold the utterance to --pipe-timeout."""
    start = time.monotonic()
    wave = load(f"(sleep 30 > /dev/null &); echo to stderr >&2; cat {golden_wav(UTT)} |", pipe_timeout=20)
    assert np.array_equal(wave, golden_wave(UTT)) and time.monotonic() - start < 5
    start = time.monotonic()  # one that keeps writing to stderr: done as well once the shell exits
    wave = load(f"(while true; do echo x >&2; sleep 0.01; done) & cat {golden_wav(UTT)}; sleep 0.1; "
                "kill $! |", pipe_timeout=20)
    assert np.array_equal(wave, golden_wave(UTT)) and time.monotonic() - start < 5
    wave = load(f"(for i in $(seq 500); do echo x >&2; sleep 0.01; done) & cat {golden_wav(UTT)} |", pipe_timeout=20)
    assert np.array_equal(wave, golden_wave(UTT)) and time.monotonic() - start < 10
    with pytest.raises(AudioError, match=r"command exited with code 3: last words$"):
        load(f"(sleep 30 > /dev/null &); cat {golden_wav(UTT)}; echo last words >&2; exit 3 |", pipe_timeout=20)


def test_pipe_that_never_stops_writing_is_cut_at_the_byte_cap():
    with pytest.raises(AudioError, match=r"command wrote more than 0.001 GB, more than the longest audio "
                                         r"accepted from a pipe \(12 h\); killed"):
        AudioLoader(16000, max_pipe_bytes=10**6).load(Utterance("u1", "u1", "yes |"))
    from speech_reps.kaldi.audio import pipe_byte_cap

    assert pipe_byte_cap(16000) == 12 * 3600 * 16000 * 4  # 12 h of 16 kHz audio in 32-bit samples


def test_segment_named_as_its_recording_is_cut():
    wave = AudioLoader(16000).load(Utterance(UTT, UTT, str(golden_wav(UTT)), 0.5, 1.5))
    assert np.array_equal(wave, golden_wave(UTT)[8000:24000])
    with pytest.raises(AudioError, match=r"invalid segment: end 0.5s is not after start 1s"):
        AudioLoader(16000).load(Utterance(UTT, UTT, str(golden_wav(UTT)), 1.0, 0.5))
    with pytest.raises(AudioError, match=r"invalid segment: start -1s is before the recording's start$"):
        AudioLoader(16000).load(Utterance(UTT, UTT, str(golden_wav(UTT)), -1.0, 1.0))


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("MP3", "MPEG_LAYER_III"),
                                         ("OGG", "VORBIS"), ("AIFF", "PCM_16"), ("AU", "PCM_16"),
                                         ("NIST", "PCM_16"), ("RF64", "PCM_16"), ("W64", "PCM_16")])
def test_truncated_container_is_an_error_not_a_shorter_utterance(tmp_path, fmt, subtype):
    x = golden_wave(UTT).astype(np.int16)
    sf.write(tmp_path / "full", x, 16000, format=fmt, subtype=subtype)
    full = (tmp_path / "full").read_bytes()
    assert len(load(tmp_path / "full")) == len(x)
    (tmp_path / "cut").write_bytes(full[:int(len(full) * 0.7)])
    with pytest.raises(AudioError, match=r"truncated file: the header declares|cannot decode file as audio"):
        load(tmp_path / "cut")
    with pytest.raises(AudioError, match=r"truncated pipe output|cannot decode pipe output as audio"):
        load(f"cat {tmp_path}/cut |")


def test_headerless_pcm_is_not_decoded_as_mpeg(tmp_path):
    pcm = golden_wave(UTT).astype(np.int16).tobytes()
    (tmp_path / "a.pcm").write_bytes(b"\xff\xfb\x90\x64" + pcm)  # starts like an MPEG frame header
    with pytest.raises(AudioError, match=r"no audio header that libsndfile recognises \(it could only guess MPEG"):
        load(tmp_path / "a.pcm")
    (tmp_path / "a.raw").write_bytes(pcm)
    with pytest.raises(AudioError, match=r"headerless PCM \('.raw'\) has no sample rate or format; give the audio"):
        load(tmp_path / "a.raw")
    sf.write(tmp_path / "a.mp3", golden_wave(UTT).astype(np.int16), 16000, format="MP3")
    assert (tmp_path / "a.mp3").read_bytes()[:3] != b"ID3"  # a real MP3 without a tag still reads
    assert len(load(tmp_path / "a.mp3")) > 0


def test_directory_and_archive_offset_past_the_end(tmp_path):
    with pytest.raises(AudioError, match=rf"is a directory, not an audio file: {tmp_path}$"):
        load(tmp_path)
    with pytest.raises(AudioError, match=r"offset 10000000 is past the end of .*spk1-utt1.wav \(102600 bytes\)"):
        load(f"{golden_wav(UTT)}:10000000")
