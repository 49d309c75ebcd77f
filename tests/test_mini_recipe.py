"""egs/mini end to end on a small subset: real speech (Asterisk prompts, installed by
`make sysdeps`), sox pipes, fbank and a (small, random) DeCoAR, probes; then, with no
DeCoAR weights, the real pretrained ge2e, its x-vectors and their cosine-scoring EER."""

import os
import shutil
import subprocess
import sys

import kaldiio
import pytest

from conftest import REPO
from decoar_files import mxnet_names, random_weights, write_params


@pytest.mark.slow
def test_mini_recipe_stages(tmp_path):
    recipe = tmp_path / "mini"
    shutil.copytree(REPO / "egs" / "mini", recipe, ignore=shutil.ignore_patterns("data", "exp", "feats"))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    write_params(artifacts / "decoar-encoder-29b8e2ac.params", mxnet_names(random_weights(40, 32, 2), "legacy", "decoar0_"))
    env = dict(os.environ, SPEECH_REPS_ROOT=str(REPO), PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    proc = subprocess.run(["./run.sh", "--per-lang", "8", "--model", "decoar", "--artifacts", str(artifacts),
                           "--download", "false"], cwd=recipe, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stage in ("Stage 0: data preparation", "Stage 1: validate", "Stage 2: Kaldi fbank", "Stage 3: featurize with decoar"):
        assert stage in proc.stdout
    assert "probe: fbank test accuracy" in proc.stdout and "probe: decoar test accuracy" in proc.stdout
    first = (recipe / "data" / "train" / "wav.scp").read_text().splitlines()[0]
    assert " sox -D " in first and first.endswith(" -r 16000 -t wav - |")
    for name, dim in (("fbank", 40), ("decoar", 64)):
        feats = dict(kaldiio.load_scp(str(recipe / "data" / f"test_{name}" / "feats.scp")))
        assert len(feats) == 6 and all(m.shape[1] == dim for m in feats.values())  # 2 of 8 per language
    # deterministic (dither 0, seeded weights): real fbank separates the three voices; a random
    # 64-unit DeCoAR less well, but above chance (1/3)
    assert float((recipe / "exp" / "probe_fbank" / "accuracy").read_text()) >= 0.8
    assert float((recipe / "exp" / "probe_decoar" / "accuracy").read_text()) > 0.5
    assert (recipe / "data" / "train_decoar" / "frame_shift").read_text() == "0.01\n"

    offline = subprocess.run(["./run.sh", "--stage", "3", "--model", "wav2vec", "--artifacts", str(artifacts),
                              "--download", "false"], cwd=recipe, env=env, capture_output=True, text=True)
    assert offline.returncode == 1
    assert offline.stderr.strip().splitlines()[-1] == (
        f"run.sh: no wav2vec weights: put wav2vec_large.pt into {artifacts}/ (utils/download_models.sh wav2vec "
        "needs the internet), or run with --model ge2e or fbank, which run offline")

    # no DeCoAR weights: --model auto is ge2e, whose weights are the venv's resemblyzer wheel
    empty = tmp_path / "no-artifacts"
    empty.mkdir()
    ge2e = subprocess.run(["./run.sh", "--stage", "3", "--artifacts", str(empty), "--download", "false"],
                          cwd=recipe, env=env, capture_output=True, text=True)
    assert ge2e.returncode == 0, ge2e.stderr[-3000:]
    assert "--model auto: ge2e" in ge2e.stdout and "Stage 4: ge2e utterance vectors" in ge2e.stdout
    assert "probe: ge2e test accuracy" in ge2e.stdout
    feats = dict(kaldiio.load_scp(str(recipe / "data" / "test_ge2e" / "feats.scp")))
    assert len(feats) == 6 and all(m.shape[1] == 256 for m in feats.values())
    assert (recipe / "data" / "test_ge2e" / "frame_shift").read_text() == "0.77\n"
    xvectors = dict(kaldiio.load_scp(str(recipe / "exp" / "xvectors_ge2e" / "test" / "xvector.scp")))
    assert sorted(xvectors) == sorted(feats) and all(v.shape == (256,) for v in xvectors.values())
    assert (recipe / "exp" / "xvectors_ge2e" / "test" / "num_utts.ark").read_text() == "en 2\nes 2\nfr 2\n"
    eer_line = next(line for line in ge2e.stdout.splitlines() if line.startswith("eer: ge2e EER "))
    assert "(3 target / 12 non-target trials: all pairs of 6 test prompts" in eer_line
    assert float((recipe / "exp" / "probe_ge2e" / "accuracy").read_text()) >= 0.8  # README: 0.83 on the full set
    assert float((recipe / "exp" / "eer_ge2e" / "eer").read_text()) <= 40.0  # README: 34.7% on the full set
    assert len((recipe / "exp" / "eer_ge2e" / "scores").read_text().splitlines()) == 15

    # stage 4 over voiced frames: Kaldi's energy VAD into data/test/vad.scp, then --vad-scp
    vad = dict(kaldiio.load_scp(str(recipe / "data" / "test" / "vad.scp")))
    assert sorted(vad) == sorted(feats) and all(set(v.tolist()) <= {0.0, 1.0} for v in vad.values())
    assert any(line.startswith("eer: ge2e_vad EER ") for line in ge2e.stdout.splitlines())
    assert float((recipe / "exp" / "eer_ge2e_vad" / "eer").read_text()) <= 40.0

    # a smaller rerun of stages 0-2 after the full run: the data dirs shrink, and no job's old
    # features are reused for them (they were once: "featurized 90 of 24 utterances")
    smaller = subprocess.run(["./run.sh", "--stop-stage", "2", "--per-lang", "4", "--model", "fbank"],
                             cwd=recipe, env=env, capture_output=True, text=True)
    assert smaller.returncode == 0, smaller.stderr[-3000:]
    for x, n in (("train", 9), ("test", 3)):
        assert len(dict(kaldiio.load_scp(str(recipe / "data" / f"{x}_fbank" / "feats.scp")))) == n
    assert "featurized 9 of 9 utterances" in smaller.stderr
