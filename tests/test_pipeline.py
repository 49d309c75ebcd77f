"""steps/featurize.py end to end: data dir in, feats.ark/scp + a ready data dir out."""

import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from conftest import (GOLDEN_UTTS, REPO, golden_ark, golden_data_dir, golden_wav, golden_wave,
                      make_data_dir, run_tool, write_conf)
from speech_reps.frontend import CmvnStats, FeatureOptions, FrontEnd, FrontEndSpec
from speech_reps.kaldi import DataDir
from speech_reps.engine.job import Job
from speech_reps.engine.run import featurize_data_dir
from test_audio import streamed_wav

FEATURIZE = REPO / "steps" / "featurize.py"


def fbank(wave, conf):
    return FrontEnd(FrontEndSpec(FeatureOptions.from_file("fbank", conf))).features("u", wave)


def options(conf, **kw):
    return {"feature_config": conf, **kw}


def test_pipe_ark_offset_and_segments(tmp_path, dither0):
    """rec1: plain wav cut by segments; rec2: a pipe; rec3: an entry of a wav archive."""
    streamed_wav(tmp_path / "s.wav", golden_wave("spk2-utt1"), 16000)
    kaldiio.save_ark(str(tmp_path / "wav.ark"), {"rec3": (16000, golden_wave("spk3-chirp").astype(np.int16))},
                     scp=str(tmp_path / "wav_ark.scp"))
    rec3 = (tmp_path / "wav_ark.scp").read_text().split()[1]
    data = make_data_dir(
        tmp_path / "data", {"rec1": golden_wav("spk1-utt1"), "rec2": f"cat {tmp_path}/s.wav |", "rec3": rec3},
        segments="rec1-a rec1 0 1.5\nrec1-b rec1 1.5 -1\nrec2-all rec2 0 -1\nrec3-all rec3 0 -1\n",
        utt2spk="rec1-a s1\nrec1-b s1\nrec2-all s2\nrec3-all s3\n")
    summary = featurize_data_dir(Job(data, tmp_path / "out", model_options=options(dither0), progress=False))
    assert (summary.done, summary.failed) == (4, 0)

    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    whole = golden_wave("spk1-utt1")
    assert np.array_equal(feats["rec1-a"], fbank(whole[:24000], dither0))
    assert np.array_equal(feats["rec1-b"], fbank(whole[24000:], dither0))
    kaldi = golden_ark("fbank80.ark")  # whole recordings: compare with Kaldi itself
    for utt, ref in [("rec2-all", "spk2-utt1"), ("rec3-all", "spk3-chirp")]:
        assert feats[utt].shape == kaldi[ref].shape
        assert np.abs(feats[utt] - kaldi[ref])[kaldi[ref] > kaldi[ref].max(1, keepdims=True) - 10].max() < 1e-3
    assert (tmp_path / "out" / "utt2num_frames").read_text() == \
        "rec1-a 148\nrec1-b 168\nrec2-all 297\nrec3-all 168\n"
    assert (tmp_path / "out" / "frame_shift").read_text() == "0.01\n"


def test_output_data_dir_is_ready_for_kaldi(tmp_path, dither0):
    data = golden_data_dir(tmp_path / "data")
    (data / "text").write_text("".join(f"{u} HELLO\n" for u in GOLDEN_UTTS))
    (data / "cmvn.scp").write_text("stale entries\n")
    featurize_data_dir(Job(data, tmp_path / "out", model_options=options(dither0), progress=False))
    out = tmp_path / "out" / "data"
    assert sorted(p.name for p in out.iterdir()) == [
        "conf", "feats.scp", "frame_shift", "spk2utt", "text", "utt2num_frames", "utt2spk", "wav.scp"]
    assert (out / "feats.scp").read_text() == (tmp_path / "out" / "feats.scp").read_text()
    assert (out / "spk2utt").read_text() == "spk1 spk1-utt1\nspk2 spk2-utt1\nspk3 spk3-chirp spk3-short\n"
    recorded = FeatureOptions.from_file("fbank", out / "conf" / "fbank.conf")
    assert recorded["num-mel-bins"] == 80 and recorded["dither"] == 0.0
    assert "model: fbank" in (out / "conf" / "featurize.yaml").read_text()
    DataDir.load(out)  # our own validation passes on it


KALDI_UTILS = Path(os.environ.get("KALDI_ROOT", "/nonexistent"), "egs/wsj/s5/utils")


@pytest.mark.skipif(not KALDI_UTILS.is_dir(), reason="KALDI_ROOT with egs/wsj/s5/utils not set")
def test_kaldi_validate_data_dir_passes(tmp_path, dither0):
    data = golden_data_dir(tmp_path / "data")
    (data / "utt2spk").write_text("spk1-utt1 spk1\nspk2-utt1 spk2\nspk3-chirp spk3\nspk3-short spk3\n")
    featurize_data_dir(Job(data, tmp_path / "out", model_options=options(dither0), progress=False))
    os.symlink(KALDI_UTILS, tmp_path / "utils")
    featbin = KALDI_UTILS.parents[3] / "src" / "featbin"
    proc = run_tool("env", f"PATH={featbin}:{os.environ['PATH']}", "utils/validate_data_dir.sh",
                    "--no-text", "out/data", cwd=tmp_path)
    assert "Successfully validated data-directory out/data" in proc.stdout


def test_bad_utterance_is_named_and_the_rest_is_written(tmp_path, dither0):
    data = make_data_dir(tmp_path / "data", {
        "a": golden_wav("spk1-utt1"), "b": "cat /no/such/file.wav |", "c": golden_wav("spk2-utt1")},
        utt2spk={"a": "s1", "b": "s1", "c": "s2"})
    proc = run_tool(FEATURIZE, "--fbank-config", dither0, data, tmp_path / "out", check=False)
    assert proc.returncode == 1  # 1 of 3 failed: more than --max-failed-frac 0.05
    assert "utterance b (cat /no/such/file.wav |): command exited with code 1" in proc.stderr
    assert "done 2 utterances (0.002 h of audio), failed 1" in proc.stderr
    assert (tmp_path / "out" / "failed").read_text().startswith("b command exited with code 1")
    proc = run_tool(FEATURIZE, "--fbank-config", dither0, "--max-failed-frac", "0.5", data, tmp_path / "out",
                    check=False)
    assert proc.returncode == 0 and proc.stderr.rstrip().endswith("done 2 utterances (0.002 h of audio), failed 1")
    assert [line.split()[0] for line in (tmp_path / "out" / "feats.scp").read_text().splitlines()] == ["a", "c"]
    out = tmp_path / "out" / "data"
    assert (out / "utt2spk").read_text() == "a s1\nc s2\n"  # filtered as fix_data_dir.sh would
    assert (out / "spk2utt").read_text() == "s1 a\ns2 c\n"
    assert (out / "wav.scp").read_text().count("\n") == 2
    DataDir.load(out)


def test_speaker_cmvn_uses_all_of_the_speakers_frames(tmp_path, dither0):
    data = golden_data_dir(tmp_path / "data")
    featurize_data_dir(Job(data, tmp_path / "out", model_options=options(dither0, cmvn="spk", norm_vars=True),
                       progress=False))
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    raw = {u: fbank(golden_wave(u), dither0) for u in ["spk3-chirp", "spk3-short"]}
    stats = CmvnStats(80)
    for m in raw.values():
        stats.accumulate(m)
    for utt, m in raw.items():
        assert np.allclose(feats[utt], stats.apply(m, True), atol=1e-5)
    both = np.concatenate([feats["spk3-chirp"], feats["spk3-short"]])
    assert np.allclose(both.mean(0), 0, atol=1e-3) and np.allclose(both.std(0), 1, atol=1e-3)


def test_utterance_cmvn_without_variance(tmp_path, dither0):
    data = golden_data_dir(tmp_path / "data")
    featurize_data_dir(Job(data, tmp_path / "out", model_options=options(dither0, cmvn="utt"), progress=False))
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    raw = fbank(golden_wave("spk1-utt1"), dither0)
    assert np.allclose(feats["spk1-utt1"], raw - raw.mean(0), atol=1e-4)
    assert not np.allclose(feats["spk1-utt1"].std(0), 1, atol=0.1)


def test_mfcc_with_compression(tmp_path):
    conf = write_conf(tmp_path / "mfcc.conf", "--dither=0")
    data = golden_data_dir(tmp_path / "data")
    run_tool(FEATURIZE, "--model", "mfcc", "--fbank-config", conf, "--compress", "true",
             "--progress", "false", data, tmp_path / "out")
    feats = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    kaldi = golden_ark("mfcc.ark")
    for utt in ["spk1-utt1", "spk2-utt1"]:
        assert feats[utt].shape == kaldi[utt].shape
        # CM compression: 8 bits per value in 3 ranges; the coarsest step is under range / 63
        step = (kaldi[utt].max(0) - kaldi[utt].min(0)) / 63
        assert (np.abs(feats[utt] - kaldi[utt]) <= step + 2e-3).all()
    assert (tmp_path / "out" / "data" / "conf" / "mfcc.conf").is_file()


def test_validation_errors_stop_before_any_work(tmp_path):
    data = make_data_dir(tmp_path / "data", f"b {golden_wav('spk1-utt1')}\na {golden_wav('spk1-utt1')}\n")
    proc = run_tool(FEATURIZE, data, tmp_path / "out", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(f"featurize.py: {data}/wav.scp:2: a: not sorted (comes after b); "
                                        "sort with LC_ALL=C sort")
    assert not (tmp_path / "out").exists()


def test_spk_cmvn_needs_utt2spk(tmp_path):
    data = make_data_dir(tmp_path / "data", {"a": golden_wav("spk1-utt1")})
    proc = run_tool(FEATURIZE, "--cmvn", "spk", data, tmp_path / "out", check=False)
    assert proc.returncode == 1 and "--cmvn spk: " in proc.stderr and "utt2spk is missing" in proc.stderr


def test_all_failed_exits_non_zero(tmp_path):
    data = make_data_dir(tmp_path / "data", {"a": "false |"})
    proc = run_tool(FEATURIZE, data, tmp_path / "out", check=False)
    assert proc.returncode == 1
    assert "done 0 utterances (0.000 h of audio), failed 1" in proc.stderr


@pytest.mark.parametrize("args", [["--help"], []])
def test_usage(args):
    proc = run_tool(FEATURIZE, *args, check=False)
    assert "usage: featurize.py [-h]" in (proc.stdout + proc.stderr)
    assert ("e.g.: steps/featurize.py" in proc.stdout) == (args == ["--help"])


VALIDATE = REPO / "utils" / "validate_data_dir.py"


def test_utils_validate_data_dir(tmp_path, dither0):
    data = golden_data_dir(tmp_path / "data")
    featurize_data_dir(Job(data, tmp_path / "out", model_options=options(dither0), progress=False))
    assert run_tool(VALIDATE, tmp_path / "out" / "data").returncode == 0
    lines = (tmp_path / "out" / "data" / "feats.scp").read_text().splitlines()
    (tmp_path / "out" / "data" / "feats.scp").write_text("\n".join(lines[:3]) + "\n")
    proc = run_tool(VALIDATE, tmp_path / "out" / "data", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"validate_data_dir.py: {tmp_path}/out/data/feats.scp: utterances differ "
                                   "from the data dir's (1 missing, 0 extra, e.g. spk3-short)")
