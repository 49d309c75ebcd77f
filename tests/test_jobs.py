"""Parallel jobs: parse_options.sh, split_data.sh, run.pl, steps/featurize.sh (with resume)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, golden_wav, make_data_dir
from speech_reps.errors import DataDirError
from speech_reps.kaldi.split import split_data_dir

FEATURIZE_SH = REPO / "steps" / "featurize.sh"
ENV_PATH = f"{Path(sys.executable).parent}:{REPO / 'utils' / 'parallel'}:{os.environ['PATH']}"


def bash(script, cwd=None):
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, PATH=ENV_PATH))


OPTIONS_SCRIPT = """set -euo pipefail
nj=4; use_gpu=false; cmd=run.pl; help_message="Usage: x <a>"
. {repo}/utils/parse_options.sh
echo "nj=$nj use_gpu=$use_gpu cmd=$cmd rest=$*"
"""


@pytest.mark.parametrize("args,rc,out", [
    ("--nj 8 --use-gpu true --cmd 'slurm.pl --mem 4G' a b", 0, "nj=8 use_gpu=true cmd=slurm.pl --mem 4G rest=a b"),
    ("a --nj 8", 0, "nj=4 use_gpu=false cmd=run.pl rest=a --nj 8"),  # options come first
    ("--use-gpu yes a", 1, 'expected "true" or "false": --use-gpu yes'),
    ("--foo 1 a", 1, "invalid option --foo"),
    ("--nj=3 a", 1, "options to scripts must be of the form --name value"),
    ("--help", 0, "Usage: x <a>"),
])
def test_parse_options(tmp_path, args, rc, out):
    script = tmp_path / "s.sh"
    script.write_text(OPTIONS_SCRIPT.format(repo=REPO))
    proc = bash(f"bash {script} {args}")
    assert proc.returncode == rc and out in proc.stdout + proc.stderr


def test_parse_options_config_is_data_not_code(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(OPTIONS_SCRIPT.format(repo=REPO))
    conf = tmp_path / "c.conf"
    conf.write_text(f"nj=12  # more jobs\n--cmd=$(touch {tmp_path}/pwned)\n")
    proc = bash(f"bash {script} --config {conf} x")
    assert proc.stdout.strip() == f"nj=12 use_gpu=false cmd=$(touch {tmp_path}/pwned) rest=x"
    assert not (tmp_path / "pwned").exists()


def test_split_and_recombine(tmp_path):
    utts = {f"s{s}-u{u}": golden_wav("spk1-utt1") for s in range(5) for u in range(s + 1)}  # 15 utts
    data = make_data_dir(tmp_path / "d", utts, utt2spk={u: u.split("-")[0] for u in utts},
                         extra={"text": {u: "HI" for u in utts}})
    split = split_data_dir(data, 3)
    parts = [split / str(n) for n in (1, 2, 3)]
    spk_sets = [set((p / "spk2utt").read_text().split("\n")[0].split()[:1]) for p in parts]
    assert all(spk_sets)
    for name in ("wav.scp", "utt2spk", "text", "spk2utt"):
        joined = "".join((p / name).read_text() for p in parts)
        assert joined == (data / name).read_text() if name != "spk2utt" else joined.count("\n") == 5
    speakers = [set(line.split()[1] for line in (p / "utt2spk").read_text().splitlines()) for p in parts]
    assert not (speakers[0] & speakers[1]) and not (speakers[1] & speakers[2])  # speakers stay whole
    per_utt = split_data_dir(data, 4, per_utt=True)
    sizes = [len((per_utt / str(n) / "utt2spk").read_text().splitlines()) for n in range(1, 5)]
    assert sizes == [4, 4, 4, 3] and per_utt.name == "split4utt"
    with pytest.raises(DataDirError, match="cannot split 5 speakers into 6 parts; use --per-utt"):
        split_data_dir(data, 6)




UTILS = REPO / "utils"


def small_dir(root, n=6):
    utts = sorted(f"s{i % 3}-u{i}" for i in range(n))
    return make_data_dir(root, {u: golden_wav("spk3-short") for u in utts}, utt2spk={u: u.split("-")[0] for u in utts},
                         extra={"text": {u: "HELLO" for u in utts}})


def test_split_then_combine_round_trip(tmp_path):
    data = small_dir(tmp_path / "d")
    assert bash(f"cd {tmp_path} && {UTILS}/split_data.sh --per-utt d 3").returncode == 0
    parts = " ".join(f"d/split3utt/{n}" for n in (1, 2, 3))
    proc = bash(f"cd {tmp_path} && {UTILS}/combine_data.sh all {parts}")
    assert proc.returncode == 0, proc.stderr
    for name in ("wav.scp", "utt2spk", "text"):
        assert (tmp_path / "all" / name).read_text() == (data / name).read_text()
    assert (tmp_path / "all" / "spk2utt").read_text() == "s0 s0-u0 s0-u3\ns1 s1-u1 s1-u4\ns2 s2-u2 s2-u5\n"
    proc = bash(f"cd {tmp_path} && {UTILS}/combine_data.sh twice d d")
    assert proc.returncode == 1 and "s0-u0: also in d/" in proc.stderr


@pytest.mark.parametrize("breakage,message", [
    (lambda d: (d / "text").unlink(), "text: missing"),
    (lambda d: (d / "utt2spk").unlink(), "utt2spk: missing"),
    (lambda d: (d / "text").write_text("s0-u0 HI\ns0-u3 HI\n"), "text: utterances differ from the data dir's (4 missing"),
    (lambda d: (d / "wav.scp").write_text((d / "wav.scp").read_text().replace("s0-u0", "zz")), "not sorted"),
    (lambda d: (d / "spk2utt").write_text("s0 s0-u0\ns1 s1-u1 s1-u4\ns2 s2-u2 s2-u5\n"), "does not list s0-u3"),
    (lambda d: (d / "feats.scp").write_text("s0-u0 x.ark:1\n"), "feats.scp: utterances differ"),
])
def test_validate_data_dir_sh_catches_each_problem(tmp_path, breakage, message):
    data = small_dir(tmp_path / "d")
    (data / "spk2utt").write_text("s0 s0-u0 s0-u3\ns1 s1-u1 s1-u4\ns2 s2-u2 s2-u5\n")
    assert bash(f"{UTILS}/validate_data_dir.sh {data}").returncode == 0
    breakage(data)
    proc = bash(f"{UTILS}/validate_data_dir.sh {data}")
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    if message == "text: missing":
        assert bash(f"{UTILS}/validate_data_dir.sh --no-text {data}").returncode == 0


def test_fix_and_copy_data_dir(tmp_path):
    data = small_dir(tmp_path / "d")
    (data / "text").write_text("s0-u0 HI\ns1-u1 HI\ns1-u4 HI\ns2-u2 HI\ns2-u5 HI\n")  # s0-u3 has no text
    proc = bash(f"{UTILS}/fix_data_dir.sh {data}")
    assert proc.returncode == 0 and "kept 5 utterances, dropped 1" in proc.stdout
    assert "s0-u3" not in (data / "utt2spk").read_text() and "s0-u3" in (data / ".backup" / "utt2spk").read_text()
    assert (data / "spk2utt").read_text().splitlines()[0] == "s0 s0-u0"
    assert bash(f"{UTILS}/validate_data_dir.sh {data}").returncode == 0
    assert bash(f"{UTILS}/copy_data_dir.sh {data} {tmp_path}/copy").returncode == 0
    assert (tmp_path / "copy" / "text").read_text() == (data / "text").read_text()
    assert not (tmp_path / "copy" / ".backup").exists()


@pytest.mark.parametrize("script,args", [("copy_data_dir.sh", "SRC DEST"), ("fix_data_dir.sh", "SRC"),
                                         ("combine_data.sh", "DEST SRC")])
def test_data_dir_tools_help_options_and_errors_are_one_line(tmp_path, script, args):
    data = small_dir(tmp_path / "d")
    proc = bash(f"{UTILS}/{script} --help")
    assert proc.returncode == 0 and "\n e.g.: " in proc.stdout
    proc = bash(f"{UTILS}/{script} --bogus {args.replace('SRC', str(data)).replace('DEST', str(tmp_path / 'o'))}")
    assert proc.returncode == 1 and proc.stderr.strip().endswith(f"{script}: invalid option --bogus")
    missing = args.replace("SRC", str(tmp_path / "none")).replace("DEST", str(tmp_path / "o"))
    proc = bash(f"{UTILS}/{script} {missing}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    if script == "copy_data_dir.sh":
        (tmp_path / "afile").write_text("")
        proc = bash(f"{UTILS}/{script} {data} {tmp_path}/afile/x")
        assert proc.returncode == 1 and proc.stderr.strip() == (
            f"copy_data_dir.sh: cannot write {tmp_path}/afile/x: Not a directory")
