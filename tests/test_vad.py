"""Kaldi's energy VAD (compute-vad) and voiced frames (select-voiced-frames), against real Kaldi's
outputs in tests/data/kaldi_golden/vad/ (README.txt there), and the mapping of 10 ms VAD
decisions onto other models' frames."""

import kaldiio
import numpy as np
import pytest

from conftest import GOLDEN, GOLDEN_UTTS, REPO, golden_data_dir, golden_wave, run_tool, write_conf
from speech_reps.errors import ConfigError
from speech_reps.frontend import FeatureOptions, FrontEnd
from speech_reps.kaldi.vad import (VadOptions, compute_vad, vad_frame_centres, voiced_model_frames,
                                   write_vad)
from speech_reps.models.registry import create
from speech_reps.engine.job import Job
from speech_reps.engine.run import featurize_data_dir
from speech_reps.vad_pipeline import compute_vad_data_dir

VAD = GOLDEN / "vad"
CONFIGS = ("default", "voxceleb")


def golden(name):
    return dict(kaldiio.load_ark(str(VAD / name)))


def vad_scp(path, masks):
    """A vad.ark/scp from {utt: 0/1 sequence}; returns the scp."""
    write_vad(path.with_suffix(".ark"), path, {u: np.asarray(m, dtype=np.float32) for u, m in masks.items()})
    return path


@pytest.mark.parametrize("config", CONFIGS)
def test_decisions_equal_kaldi_on_its_mfcc(config, tmp_path):
    """compute-vad on Kaldi's own MFCC: every decision equal, and the archive byte for byte."""
    opts = VadOptions.from_file(VAD / f"vad_{config}.conf")
    kaldi = golden(f"vad_{config}.ark")
    ours = {utt: compute_vad(mfcc, opts) for utt, mfcc in golden("mfcc_vox.ark").items()}
    assert list(ours) == GOLDEN_UTTS
    for utt in GOLDEN_UTTS:
        assert ours[utt].dtype == np.float32
        assert np.array_equal(ours[utt], kaldi[utt]), utt
    voiced = {u: int(v.sum()) for u, v in ours.items()}  # README.txt's table
    assert voiced == ({"spk1-utt1": 273, "spk2-utt1": 254, "spk3-chirp": 170, "spk3-short": 27} if config == "default"
                      else {"spk1-utt1": 288, "spk2-utt1": 267, "spk3-chirp": 170, "spk3-short": 27})
    write_vad(tmp_path / "vad.ark", tmp_path / "vad.scp", ours)
    assert (tmp_path / "vad.ark").read_bytes() == (VAD / f"vad_{config}.ark").read_bytes()


def test_conf_mfcc_vad_is_voxcelebs_mfcc():
    ours = FeatureOptions.from_file("mfcc", REPO / "conf" / "mfcc_vad.conf")
    assert ours.values == FeatureOptions.from_file("mfcc", VAD / "mfcc_vox.conf").values
    assert VadOptions.from_file(REPO / "conf" / "vad.conf") == VadOptions.from_file(VAD / "vad_voxceleb.conf")
    assert VadOptions.from_file(VAD / "vad_default.conf") == VadOptions()


@pytest.mark.parametrize("config", CONFIGS)
def test_compute_vad_from_wavs_equals_kaldi(config, tmp_path):
    """End to end: wav -> our MFCC (conf/mfcc_vad.conf) -> compute-vad equals Kaldi's archive;
    vad.scp goes into the data dir as compute_vad_decision.sh puts it, the old one to .backup/."""
    data = golden_data_dir(tmp_path / "data")
    (data / "vad.scp").write_text("old\n")
    summary = compute_vad_data_dir(data, tmp_path / "vad", vad_config=VAD / f"vad_{config}.conf", progress=False)
    assert (summary.done, summary.failed, summary.unvoiced, summary.frames) == (4, 0, 0, 816)
    assert summary.voiced_frames == (724 if config == "default" else 752)
    assert (tmp_path / "vad" / "vad.ark").read_bytes() == (VAD / f"vad_{config}.ark").read_bytes()
    assert (data / ".backup" / "vad.scp").read_text() == "old\n"
    assert (data / "vad.scp").read_text() == (tmp_path / "vad" / "vad.scp").read_text()
    assert (tmp_path / "vad" / "vad.scp").read_text().split()[1].startswith(str(tmp_path / "vad" / "vad.ark:"))
    assert (tmp_path / "vad" / "failed").read_text() == ""


def test_compute_vad_script(tmp_path):
    data = golden_data_dir(tmp_path / "data")
    (data / "wav.scp").write_text((data / "wav.scp").read_text() + "zz-missing /nonexistent.wav\n")
    (data / "utt2spk").write_text((data / "utt2spk").read_text() + "zz-missing zz\n")
    proc = run_tool(REPO / "steps" / "compute_vad.py", "--progress", "false", data, tmp_path / "vad")
    assert "done 4 utterances, failed 1" in proc.stderr
    assert "proportion of voiced frames 0.921569 over 816 frames" in proc.stderr
    ours = dict(kaldiio.load_scp(str(data / "vad.scp")))
    kaldi = golden("vad_voxceleb.ark")
    assert sorted(ours) == GOLDEN_UTTS and all(np.array_equal(ours[u], kaldi[u]) for u in GOLDEN_UTTS)
    assert (tmp_path / "vad" / "failed").read_text().startswith("zz-missing ")
    assert "--vad-frames-context=2" in (tmp_path / "vad" / "conf" / "vad.conf").read_text()


def test_window_and_proportion_rule():
    """Known answers: threshold 5 (no mean term); E above it at frames 0 and 4 only."""
    feats = np.array([[10.0], [0.0], [0.0], [0.0], [10.0]], dtype=np.float32)
    rule = dict(vad_energy_threshold=5.0, vad_energy_mean_scale=0.0, vad_frames_context=1)
    # window clipped at the ends: frame 0 sees frames 0-1 (1 of 2 above), frame 1 sees 0-2 (1 of 3)
    assert compute_vad(feats, VadOptions(**rule, vad_proportion_threshold=0.5)).tolist() == [1, 0, 0, 0, 1]
    assert compute_vad(feats, VadOptions(**rule, vad_proportion_threshold=0.3)).tolist() == [1, 1, 0, 1, 1]
    # mean term: threshold 5 + 0.5 * mean(E) = 5 + 0.5 * 4 = 7; E = 6 is then unvoiced
    feats = np.array([[6.0], [0.0], [10.0], [4.0]], dtype=np.float32)
    assert compute_vad(feats, VadOptions(vad_energy_threshold=5.0)).tolist() == [0, 0, 1, 0]
    assert compute_vad(np.zeros((0, 3), np.float32)).shape == (0,)


@pytest.mark.parametrize("line,cause", [
    ("--vad-energy-treshold=5", "--vad-energy-treshold: not an option of compute-vad"),
    ("--vad-proportion-threshold=1.0", "must be in (0, 1)"),
    ("--vad-frames-context=-1", "must be >= 0"),
    ("--vad-frames-context=two", "expected int"),
])
def test_bad_vad_config(tmp_path, line, cause):
    conf = write_conf(tmp_path / "vad.conf", "# ok", line)
    with pytest.raises(ConfigError, match=str(conf).replace(".", r"\.")) as e:
        VadOptions.from_file(conf)
    assert cause in str(e.value)


# --- the mapping rule --------------------------------------------------------------------
def centres_16k(vad, num_samples):
    return vad_frame_centres(len(vad), num_samples, 16000)


def spans(starts, ends):
    return np.asarray(starts) * 400, np.asarray(ends) * 400  # samples -> the rule's unit


def test_vad_length_tells_the_framing():
    n = 16000  # 1 s: 100 frames unsnipped, 98 snipped (Kaldi's default); nothing else fits
    assert vad_frame_centres(100, n, 16000)[:2].tolist() == [80 * 400, 240 * 400]  # 5 ms, 15 ms
    assert vad_frame_centres(98, n, 16000)[:2].tolist() == [200 * 400, 360 * 400]  # 12.5 ms, 22.5 ms
    assert vad_frame_centres(99, n, 16000) is None and vad_frame_centres(101, n, 16000) is None
    assert vad_frame_centres(1, 399, 16000) is None  # 2 frames unsnipped; 0 snipped (under a window)
    assert len(vad_frame_centres(2, 399, 16000)) == 2


def test_10ms_model_framed_as_the_vad_is_select_voiced_frames():
    vad = np.array([1, 0, 0, 1, 1, 0, 1], dtype=np.float32)
    starts = np.arange(7) * 160
    assert voiced_model_frames(vad, centres_16k(vad, 7 * 160), *spans(starts, starts + 160)).tolist() == \
        [True, False, False, True, True, False, True]


def test_20ms_and_30ms_frames_need_half_their_vad_frames():
    vad = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1], dtype=np.float32)
    centres = centres_16k(vad, 12 * 160)
    starts = np.arange(6) * 320  # 20 ms: pairs (1,1) (1,0) (0,0) (0,1) (0,0) (1,1)
    assert voiced_model_frames(vad, centres, *spans(starts, starts + 320)).tolist() == \
        [True, True, False, True, False, True]
    starts = np.arange(4) * 480  # 30 ms: (1,1,1) (0,0,0) (0,1,0) (0,1,1): 1 of 3 is under half
    assert voiced_model_frames(vad, centres, *spans(starts, starts + 480)).tolist() == \
        [True, False, False, True]


def test_window_frames_by_their_span_and_frames_spanning_no_vad_centre():
    vad = np.zeros(320, dtype=np.float32)
    vad[120:] = 1  # voiced from 1.2 s
    centres = centres_16k(vad, 320 * 160)
    starts = np.arange(3) * 77 * 160  # GE2E partials: 160 mel frames every 77
    # partial 0 spans frames 0..159 (40 voiced: under half), 1: 77..236 (117), 2: 154..313 (all)
    assert voiced_model_frames(vad, centres, *spans(starts, starts + 160 * 160)).tolist() == [False, True, True]
    # 5 ms spans that hold no VAD centre (centres at 5 ms + k 10 ms): the VAD frame nearest to
    # their middle decides: 1195.5-1200.5 ms -> frame 119 (1195 ms, unvoiced), 1199.5-1204.5 ->
    # frame 120 (1205 ms: 3 ms from the middle, frame 119 is 7 ms), 1205.5-1210.5 -> frame 120
    starts = np.array([1195.5, 1199.5, 1205.5]) * 16
    assert voiced_model_frames(vad, centres, *spans(starts, starts + 80)).tolist() == [False, True, True]


# --- featurize.py --vad-scp -------------------------------------------------------------
def test_mfcc_voiced_frames_equal_select_voiced_frames(tmp_path):
    """featurize --vad-scp with Kaldi's vad_voxceleb.ark keeps exactly Kaldi's voiced rows."""
    data = golden_data_dir(tmp_path / "data")
    vad_scp(data / "vad.scp", golden("vad_voxceleb.ark"))  # the very bytes of Kaldi's archive
    out = tmp_path / "out"
    summary = featurize_data_dir(Job(data, out, model="mfcc", model_options={"feature_config": VAD / "mfcc_vox.conf"},
                                 progress=False, vad_scp=data / "vad.scp"))
    assert (summary.done, summary.failed) == (4, 0)
    ours = dict(kaldiio.load_scp(str(out / "feats.scp")))
    kaldi, vad = golden("voiced_voxceleb.ark"), golden("vad_voxceleb.ark")
    mfcc = create("mfcc", feature_config=VAD / "mfcc_vox.conf")
    frontend = FrontEnd(mfcc.frontend)
    for utt in GOLDEN_UTTS:
        every = frontend.features(utt, golden_wave(utt))
        assert np.array_equal(ours[utt], every[vad[utt] == 1]), utt  # select-voiced-frames' rows
        assert ours[utt].shape == kaldi[utt].shape, utt
        if utt.startswith(("spk1", "spk2")):  # speech: our MFCC is Kaldi's (tests/test_frontend_golden.py)
            assert np.abs(ours[utt] - kaldi[utt]).max() < 5e-3
    assert (out / "utt2num_frames").read_text() == "spk1-utt1 288\nspk2-utt1 267\nspk3-chirp 170\nspk3-short 27\n"
    assert not (out / "data" / "vad.scp").exists()  # it no longer describes these frames
    assert "vad_scp" in (out / "conf" / "featurize.yaml").read_text()


def test_pool_mean_of_voiced_frames_and_failures(tmp_path, dither0):
    """--pool mean averages only the voiced frames; a VAD of the wrong length, a missing entry
    or no voiced frame fails that utterance with its cause, and the others are written."""
    data = golden_data_dir(tmp_path / "data")
    featurize_data_dir(Job(data, tmp_path / "all", model_options={"feature_config": dither0}, progress=False))
    whole = dict(kaldiio.load_scp(str(tmp_path / "all" / "feats.scp")))
    n = {u: len(f) for u, f in whole.items()}  # 25 ms / 10 ms, snip-edges: 1 + (N - 400) // 160
    mask = np.zeros(n["spk1-utt1"]); mask[50:200] = 1  # Kaldi's default framing: same count as fbank
    scp = vad_scp(tmp_path / "vad.scp", {"spk1-utt1": mask, "spk2-utt1": np.ones(n["spk2-utt1"] + 1),
                                         "spk3-short": np.zeros(n["spk3-short"])})
    out = tmp_path / "pooled"
    summary = featurize_data_dir(Job(data, out, model_options={"feature_config": dither0},
                                 progress=False, pool="mean", vad_scp=scp))
    assert (summary.done, summary.failed) == (1, 3)
    vectors = dict(kaldiio.load_scp(str(out / "xvector.scp")))
    want = whole["spk1-utt1"][50:200].mean(axis=0, dtype=np.float64).astype(np.float32)
    assert np.allclose(vectors["spk1-utt1"], want, atol=1e-5)
    assert not np.allclose(vectors["spk1-utt1"], whole["spk1-utt1"].mean(axis=0), atol=1e-2)
    failed = dict(line.split(" ", 1) for line in (out / "xvector.failed").read_text().splitlines())
    assert failed["spk2-utt1"].startswith(f"VAD has {n['spk2-utt1'] + 1} frames, but the utterance")
    assert failed["spk3-chirp"] == "no VAD entry for this utterance"
    assert failed["spk3-short"] == "no frame was judged voiced (the VAD found no voiced frame)"


def test_featurize_script_vad_scp_with_ge2e_partials(tmp_path):
    """GE2E partials take their 1.6 s windows' VAD frames: with speech from 1.2 s on, partial 0
    (0-1.6 s) is unvoiced and the d-vector is the pool of partials 1 and 2."""
    data = golden_data_dir(tmp_path / "data")
    (data / "wav.scp").write_text(f"spk1-utt1 {GOLDEN}/wav/spk1-utt1.wav\n")
    (data / "utt2spk").write_text("spk1-utt1 spk1\n")
    mask = np.zeros(320); mask[120:] = 1  # 3.2 s, framed as conf/mfcc_vad.conf (snip-edges=false)
    scp = vad_scp(tmp_path / "vad.scp", {"spk1-utt1": mask})
    featurize_data_dir(Job(data, tmp_path / "all", model="ge2e", progress=False))
    run_tool(REPO / "steps" / "featurize.py", "--model", "ge2e", "--progress", "false", "--vad-scp", scp,
             "--pool", "mean", data, tmp_path / "voiced")
    partials = dict(kaldiio.load_scp(str(tmp_path / "all" / "feats.scp")))["spk1-utt1"]
    assert len(partials) == 3
    dvector = dict(kaldiio.load_scp(str(tmp_path / "voiced" / "xvector.scp")))["spk1-utt1"]
    mean = partials[1:].mean(axis=0, dtype=np.float64)
    assert np.allclose(dvector, mean / np.linalg.norm(mean), atol=1e-6)


def test_compute_vad_sh_jobs_equal_kaldi(tmp_path):
    """steps/compute_vad.sh: 2 jobs through run.pl; <data>/vad.scp (sorted) holds Kaldi's decisions,
    the unreadable utterance is listed in <log-dir>/failed, the old vad.scp is backed up."""
    import os
    import subprocess
    import sys

    data = golden_data_dir(tmp_path / "data")
    (data / "wav.scp").write_text((data / "wav.scp").read_text() + "zz-missing /nonexistent.wav\n")
    (data / "utt2spk").write_text((data / "utt2spk").read_text() + "zz-missing zz\n")
    (data / "vad.scp").write_text("old\n")
    path = f"{os.path.dirname(sys.executable)}:{REPO / 'utils' / 'parallel'}:{os.environ['PATH']}"
    proc = subprocess.run([str(REPO / "steps" / "compute_vad.sh"), "--nj", "2", str(data), str(tmp_path / "log"),
                           str(tmp_path / "vad")], capture_output=True, text=True, env=dict(os.environ, PATH=path))
    assert proc.returncode == 0, proc.stderr
    assert "only 4 of 5 utterances got VAD output" in proc.stderr
    lines = (data / "vad.scp").read_text().splitlines()
    assert [line.split()[0] for line in lines] == GOLDEN_UTTS
    assert {line.split()[1].rsplit(":", 1)[0] for line in lines} <= \
        {str(tmp_path / "vad" / f"vad_data.{n}" / "vad.ark") for n in (1, 2)}
    assert sorted(p.name for p in (tmp_path / "vad").iterdir()) == ["vad_data.1", "vad_data.2"]
    ours, kaldi = dict(kaldiio.load_scp(str(data / "vad.scp"))), golden("vad_voxceleb.ark")
    assert all(np.array_equal(ours[u], kaldi[u]) for u in GOLDEN_UTTS)
    assert (tmp_path / "log" / "failed").read_text().startswith("zz-missing ")
    assert (data / ".backup" / "vad.scp").read_text() == "old\n"

    # a run whose jobs fail (a missing conf) names them and leaves the data dir as it was, twice
    before = {p.name: p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}
    for _ in range(2):
        proc = subprocess.run([str(REPO / "steps" / "compute_vad.sh"), "--nj", "2", "--vad-config", "/no/vad.conf",
                               str(data), str(tmp_path / "log2"), str(tmp_path / "vad2")],
                              capture_output=True, text=True, env=dict(os.environ, PATH=path))
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1] == f"compute_vad.sh: {data} is unchanged" or lines[-1].endswith(f"{data} is unchanged")
        assert any("job 1 failed: " in line and "/no/vad.conf" in line for line in lines), proc.stderr
        assert {p.name: p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()} == before
    proc = subprocess.run([str(REPO / "steps" / "compute_vad.sh"), "--nj", "abc", str(data)],
                          capture_output=True, text=True, env=dict(os.environ, PATH=path))
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].endswith(
        "--nj abc: expected a positive number of jobs")


def test_frame_spans_of_models(dither0):
    """Spans the mapping rule uses: Kaldi frames centred where their window is (snip-edges: half
    a window in), GE2E and TRILL by their windows."""
    from speech_reps.models.registry import get_model_class

    snipped = create("fbank", feature_config=dither0)  # Kaldi's default snip-edges=true
    starts, ends = snipped.frame_spans(16000)
    assert len(starts) == 98 and (starts[0], ends[0], starts[1]) == (120, 280, 280)  # centre 200 = 12.5 ms
    starts, ends = create("mfcc", feature_config=REPO / "conf" / "mfcc_vad.conf").frame_spans(16000)
    assert len(starts) == 100 and (starts[0], ends[0]) == (0, 160)
    trill = object.__new__(get_model_class("trill"))  # spans need no weights
    starts, ends = trill.frame_spans(48000)
    assert starts.tolist() == [2720 * i for i in range(len(starts))] and (ends - starts == 15600).all()
    assert len(starts) == trill.num_frames(48000)
    # a snip-edges fbank frame j (centre 10 j + 12.5 ms) takes VAD frame j + 1 (10 j + 15 ms) of
    # an unsnipped VAD, whose frame 0 (5 ms) lies before its first frame's span
    vad = np.zeros(100, dtype=np.float32); vad[1::2] = 1
    starts, ends = snipped.frame_spans(16000)
    got = voiced_model_frames(vad, centres_16k(vad, 16000), starts * 400, ends * 400)
    assert got.tolist() == [bool(vad[j + 1]) for j in range(98)]


def test_voiced_frames_resume_byte_identical(tmp_path, dither0, monkeypatch):
    """Killed after its third batch, a --vad-scp run resumes with the batches planned on the
    full frame counts (not the voiced ones it wrote) and ends byte-identical."""
    from speech_reps.kaldi.writer import FeatureWriter

    data = golden_data_dir(tmp_path / "data")
    vad_scp(data / "vad.scp", golden("vad_default.ark"))
    kw = dict(model="mfcc", model_options={"feature_config": VAD / "mfcc_vox.conf"}, progress=False,
              batch_frames=330, vad_scp=data / "vad.scp")  # about one utterance a batch
    featurize_data_dir(Job(data, tmp_path / "whole", **kw))
    real, calls = FeatureWriter.checkpoint, {"n": 0}

    def dies_on_the_fourth(self):  # batches go by length: spk3-short, spk3-chirp, spk2-utt1, spk1-utt1
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        real(self)

    monkeypatch.setattr("speech_reps.engine.run.CHECKPOINT_SECONDS", 0.0)  # a checkpoint every batch
    monkeypatch.setattr(FeatureWriter, "checkpoint", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        featurize_data_dir(Job(data, tmp_path / "resumed", **kw))
    monkeypatch.setattr(FeatureWriter, "checkpoint", real)
    journal = (tmp_path / "resumed" / "feats.ark.journal").read_text()
    assert " 254 299 " in journal and "spk1-utt1" not in journal  # 254 voiced of 299, planned 299
    featurize_data_dir(Job(data, tmp_path / "resumed", **kw))
    assert (tmp_path / "resumed" / "feats.ark").read_bytes() == (tmp_path / "whole" / "feats.ark").read_bytes()
    assert (tmp_path / "resumed" / "utt2num_frames").read_text() == \
        "spk1-utt1 273\nspk2-utt1 254\nspk3-chirp 170\nspk3-short 27\n"


def test_a_finished_vad_run_is_redone_when_its_vad_archive_changes(tmp_path):
    """compute_vad.py with other options writes the archive again and leaves vad.scp's bytes as
    they were: a finished --vad-scp job is reused only while the archive is the same."""
    data = golden_data_dir(tmp_path / "data")
    kw = dict(model="mfcc", model_options={"feature_config": VAD / "mfcc_vox.conf"}, progress=False,
              vad_scp=data / "vad.scp", reuse=True)
    from speech_reps.engine.run import mark_done

    vad_scp(data / "vad.scp", golden("vad_default.ark"))
    mark_done(featurize_data_dir(Job(data, tmp_path / "out", **kw)))
    first = (tmp_path / "out" / "utt2num_frames").read_text()
    scp = (data / "vad.scp").read_bytes()
    assert featurize_data_dir(Job(data, tmp_path / "out", **kw)).reused  # nothing changed
    vad_scp(data / "vad.scp", golden("vad_voxceleb.ark"))
    assert (data / "vad.scp").read_bytes() == scp  # the same offsets: only the archive differs
    summary = featurize_data_dir(Job(data, tmp_path / "out", **kw))
    assert not summary.reused and (tmp_path / "out" / "utt2num_frames").read_text() != first
