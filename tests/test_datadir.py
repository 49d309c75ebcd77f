"""Data dir validation: every problem is one line with file, line and key."""

import os

import pytest

from conftest import golden_data_dir, golden_wav, make_data_dir
from speech_reps.errors import DataDirError
from speech_reps.kaldi import DataDir

WAV = golden_wav("spk1-utt1")


def problems(root):
    with pytest.raises(DataDirError) as e:
        DataDir.load(root)
    return e.value.problems


def test_valid_dir_with_segments(tmp_path):
    d = make_data_dir(tmp_path, {"rec1": WAV, "rec2": f"cat {WAV} |"},
                      segments="a rec1 0 1.5\nb rec1 1.5 -1\nc rec2 0.2 1.0 0\n",
                      utt2spk={"a": "s1", "b": "s1", "c": "s2"})
    data = DataDir.load(d)
    assert [u.utt for u in data.utterances] == ["a", "b", "c"]
    assert data.utterances[1].end == -1 and data.utterances[2].channel == 0
    assert data.utterances[2].rxfile == f"cat {WAV} |" and data.utterances[0].spk == "s1"
    assert data.spk2utt == {"s1": ["a", "b"], "s2": ["c"]}


def test_unsorted_keys(tmp_path):
    d = make_data_dir(tmp_path, f"b {WAV}\na {WAV}\n")
    assert problems(d) == [f"{d}/wav.scp:2: a: not sorted (comes after b); sort with LC_ALL=C sort"]


def test_sorting_is_bytewise_like_lc_all_c(tmp_path):
    # LC_ALL=C puts upper case before lower case and '-' before '_'
    DataDir.load(make_data_dir(tmp_path, f"A-1 {WAV}\nA_1 {WAV}\na {WAV}\n"))


def test_duplicate_keys(tmp_path):
    d = make_data_dir(tmp_path, f"a {WAV}\na {WAV}\n")
    assert problems(d) == [f"{d}/wav.scp:2: a: duplicate key"]


def test_segment_with_unknown_recording(tmp_path):
    d = make_data_dir(tmp_path, {"rec1": WAV}, segments="a rec1 0 1\nb rec9 0 1\n")
    assert problems(d) == [f"{d}/segments:2: b: recording rec9 is not in wav.scp"]


def test_bad_segment_times(tmp_path):
    d = make_data_dir(tmp_path, {"rec1": WAV}, segments="a rec1 2 1\nb rec1 x 1\nc rec1 0\n")
    assert problems(d) == [
        f"{d}/segments:3: c: expected 3..4 fields after the key, found 2",
        f"{d}/segments:1: a: invalid segment 2..1",
        f"{d}/segments:2: b: start, end and channel must be numbers",
    ]


def test_missing_files(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    d = make_data_dir(tmp_path, {"a": WAV, "b": tmp_path / "gone.wav", "c": f"{tmp_path}/gone.ark:12",
                                 "d": "cat /anything |", "e": "/dev/null", "f": tmp_path / "fifo"})
    assert problems(d) == [f"{d}/wav.scp:2: b: file not found: {tmp_path}/gone.wav",
                           f"{d}/wav.scp:3: c: file not found: {tmp_path}/gone.ark",
                           f"{d}/wav.scp:5: e: not a regular file (a device or a FIFO): /dev/null",
                           f"{d}/wav.scp:6: f: not a regular file (a device or a FIFO): {tmp_path}/fifo"]


def test_utt2spk_spk2utt_mismatch(tmp_path):
    d = make_data_dir(tmp_path, {"a": WAV, "b": WAV}, utt2spk={"a": "s1", "b": "s2"},
                      spk2utt={"s1": "a b"})
    assert problems(d) == [f"{d}/spk2utt:1: s1: lists b, but utt2spk maps it to s2"]
    (d / "spk2utt").write_text("s1 a\n")
    assert problems(d) == [f"{d}/spk2utt: s2: does not list b (utt2spk maps it to s2)"]


def test_utt2spk_must_cover_the_utterances(tmp_path):
    d = make_data_dir(tmp_path, {"a": WAV, "b": WAV}, utt2spk={"a": "s1", "z": "s1"})
    assert problems(d) == [f"{d}/utt2spk:2: z: utterance has no audio (not in wav.scp)",
                           f"{d}/utt2spk: b: utterance missing from utt2spk"]
    empty = make_data_dir(tmp_path / "empty", {"a": WAV}, utt2spk="", spk2utt="")  # one problem, said once
    assert problems(empty) == [f"{empty}/utt2spk: a: utterance missing from utt2spk"]


def test_missing_wav_scp(tmp_path):
    assert problems(tmp_path) == [f"{tmp_path}/wav.scp: missing (a data dir needs wav.scp)"]


def test_golden_dir_loads(tmp_path):
    data = DataDir.load(golden_data_dir(tmp_path / "d"))
    assert len(data) == 4 and data.utt2spk["spk3-short"] == "spk3"


def test_tables_must_be_utf8_without_a_bom(tmp_path):
    d = make_data_dir(tmp_path, {"a": WAV}, utt2spk={"a": "s"})
    (d / "wav.scp").write_bytes(b"\xef\xbb\xbfa " + str(WAV).encode() + b"\n")
    (d / "utt2spk").write_bytes(b"a s\xe9\n")
    assert problems(d) == [
        f"{d}/wav.scp:1: the file starts with a UTF-8 byte order mark (BOM); remove it, e.g. "
        "sed -i '1s/^\\xEF\\xBB\\xBF//' FILE",
        f"{d}/utt2spk:1: not UTF-8 (byte 0xe9 at column 4)",
        f"{d}/utt2spk: a: utterance missing from utt2spk",
    ]


def test_empty_segments_and_directories_are_named(tmp_path):
    d = make_data_dir(tmp_path / "d1", {"rec1": WAV}, segments="")
    assert problems(d) == [f"{d}/segments: empty (remove it to use whole recordings)"]
    d = make_data_dir(tmp_path / "d2", {"rec1": WAV})
    (d / "spk2utt").mkdir()
    assert problems(d) == [f"{d}/spk2utt: is a directory, not a file"]


def test_non_finite_segment_times_and_unreadable_audio_paths(tmp_path):
    d = make_data_dir(tmp_path / "d", {"a": tmp_path, "b": f"{WAV}:99999999", "rec1": WAV},
                      segments="s1 rec1 nan 1\ns2 rec1 0 inf\ns3 rec1 0 1\n")
    loaded = DataDir.load(d, lenient=True)
    assert loaded.audio_problems == [
        f"{d}/wav.scp:1: a: is a directory, not an audio file: {tmp_path}",
        f"{d}/wav.scp:2: b: offset 99999999 is past the end of {WAV} ({WAV.stat().st_size} bytes)",
        f"{d}/segments:1: s1: invalid segment nan..1 (times must be finite numbers)",
        f"{d}/segments:2: s2: invalid segment 0..inf (times must be finite numbers)",
    ]
    assert [u.utt for u in loaded.utterances] == ["s1", "s2", "s3"]


def test_housekeeping_tools_copy_any_transcript_bytes_and_name_bad_keys(tmp_path):
    from speech_reps.kaldi.datadir_tools import combine_data_dirs, copy_data_dir, fix_data_dir

    d = make_data_dir(tmp_path / "d", {"a": WAV, "b": WAV}, utt2spk={"a": "s", "b": "s"})
    (d / "text").write_bytes(b"a caf\xe9\nb cr\xe8me\n")  # latin-1, as old corpora have
    copy_data_dir(d, tmp_path / "copy")
    assert (tmp_path / "copy" / "text").read_bytes() == b"a caf\xe9\nb cr\xe8me\n"
    assert fix_data_dir(d) == (2, 0) and (d / "text").read_bytes() == b"a caf\xe9\nb cr\xe8me\n"
    with pytest.raises(DataDirError, match=rf"{d}/text:1: not UTF-8 \(byte 0xe9 at column 6\)"):
        combine_data_dirs(tmp_path / "both", [d, tmp_path / "copy"])
