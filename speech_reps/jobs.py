"""The work of steps/featurize.sh around its jobs (the shell script only launches them):

  prepare   claim the archive name in <feat-dir>, split the data dir into <log-dir>/split<N>[utt]
  progress  every --interval seconds, one line summing the jobs' progress lines (until killed)
  failures  name each job that did not finish, with the last error line of its log
  collect   join the jobs' outputs and, only when every job finished and at most
            --max-failed-frac of the utterances failed, put feats.scp, utt2num_frames,
            frame_shift and conf/ into the data dir (old ones copied to .backup/ first) --
            or, with --pool mean, xvector.scp, spk_xvector.{ark,scp} and num_utts.ark into
            <feat-dir>, as Kaldi's extract_xvectors.sh does.

Usage: python3 -m speech_reps.jobs <prepare|progress|collect> [options] ...
 e.g.: python3 -m speech_reps.jobs collect --nj 4 --name raw_fbank_train data/train exp/log feats
Errors are one line each, "featurize.sh: ...", and leave the data dir as it was.
"""

import argparse
import errno
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from speech_reps.errors import DataDirError, SpeechRepsError
from speech_reps.kaldi.datadir import DataDir
from speech_reps.kaldi.output_dir import FEATURE_FILES, subset_data_dir
from speech_reps.kaldi.split import split_data_dir
from speech_reps.kaldi.writer import write_scp_like
from speech_reps.layer_sweep import layer_dir
from speech_reps.parallel import substitute
from speech_reps.progress import format_eta

PROG = "featurize.sh"
_PROGRESS = re.compile(r"progress: (\d+) of (\d+) utterances \(\d+%\), ([\d.]+) h of audio, ([\d.?]+)x real time")
_SUMMARY = re.compile(r"^done (\d+) utterances \(([\d.]+) h of audio\), failed (\d+)", re.M)


class JobsError(SpeechRepsError):
    pass


def _read_table(path):
    """[(key, rest)] of a Kaldi table file, [] when it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return [tuple(line.rstrip("\n").split(" ", 1)) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def claim(feat_dir, name, data_dir):
    """Archives <feat-dir>/<name>.* belong to one data dir: two data dirs with the same basename
    featurized into one <feat-dir> would overwrite each other's archives."""
    record = Path(feat_dir) / f".{name}.data_dir"
    source = str(Path(data_dir).resolve())
    if record.is_file():
        owner = record.read_text(encoding="utf-8").strip()
        if owner != source:
            raise JobsError(f"{feat_dir} already holds the archives {name}.* of the data dir {owner}; "
                            f"give this one another name (--name) or another <feat-dir>")
    else:
        record.write_text(source + "\n", encoding="utf-8")


def prepare(data_dir, log_dir, feat_dir, name, nj, per_utt):
    claim(feat_dir, name, data_dir)
    split_dir = Path(log_dir) / f"split{nj}{'utt' if per_utt else ''}"
    try:
        split_data_dir(data_dir, nj, per_utt=per_utt, split_dir=split_dir)
    except DataDirError as e:
        raise JobsError("\n".join(e.problems)) from None


def _job_progress(log):
    """(done, total, hours, finished) from a job's log, or None before its first line."""
    try:
        text = Path(log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    summary = _SUMMARY.findall(text)
    lines = _PROGRESS.findall(text)
    if summary:
        done, hours, failed = summary[-1]
        total = int(done) + int(failed)
        return total, total, float(hours), True
    if lines:
        done, total, hours, _ = lines[-1]
        return int(done), int(total), float(hours), False
    return None


def progress_line(logs, started, total_utts, clock=time.monotonic):
    """One line summing the jobs' logs."""
    states = [s for s in (_job_progress(log) for log in logs) if s is not None]
    done = sum(s[0] for s in states)
    hours = sum(s[2] for s in states)
    finished = sum(1 for s in states if s[3])
    elapsed = clock() - started
    speed = hours * 3600 / elapsed if elapsed > 0 else 0.0
    eta = (total_utts - done) * elapsed / done if done else None
    return (f"{PROG}: progress: {done} of {total_utts} utterances ({100.0 * done / max(total_utts, 1):.0f}%), "
            f"{hours:.3f} h of audio, {speed:.1f}x real time, {finished} of {len(logs)} jobs finished, "
            f"ETA {format_eta(eta)}")


def job_logs(template, nj):
    """The logs of jobs 1..nj from a launcher's log name (JOB replaced, as the launchers do)."""
    return [substitute(template, "JOB", n) for n in range(1, nj + 1)]


def failures(template, feat_dir, name, nj):
    """One line per job that did not finish: its log's last error line."""
    for n, log in enumerate(job_logs(template, nj), 1):
        if (Path(feat_dir) / f"{name}.{n}.done").is_file():
            continue
        try:
            lines = Path(log).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        errors = [line for line in lines if line.startswith("featurize.py: ") or "Error" in line]
        reason = errors[-1] if errors else "no error line (killed?)"
        print(f"{PROG}: job {n} failed: {reason} (log: {log})", file=sys.stderr)


def watch(logs, total_utts, interval):
    started = time.monotonic()
    while True:
        time.sleep(interval)
        print(progress_line(logs, started, total_utts), file=sys.stderr, flush=True)


def _utterances(data_dir):
    data = DataDir.load(data_dir, check_files=False, lenient=True)
    return data, [u.utt for u in data.utterances]


def collect(data_dir, log_dir, feat_dir, name, nj, pool="none", max_failed_frac=0.05,
            write_utt2num_frames=True, update_data_dir=True, layers=None):
    """Join the outputs of jobs 1..nj (<feat-dir>/<name>.<n>.*); see the module docstring.
    ``layers`` (a layer sweep, --layer 4,8,12): each layer's outputs, in <feat-dir>/layer<N>/,
    go into a data dir of their own beside the input one, <data-dir>_layer<N> (a copy of its
    tables): one data dir cannot hold several feats.scp."""
    data_dir, log_dir, feat_dir = Path(data_dir), Path(log_dir), Path(feat_dir)
    data, utts = _utterances(data_dir)
    unfinished = [n for n in range(1, nj + 1) if not (feat_dir / f"{name}.{n}.done").is_file()]
    if unfinished:
        raise JobsError(f"job(s) {' '.join(map(str, unfinished))} of {nj} did not finish; "
                        f"see {log_dir}/featurize_*.{unfinished[0]}.log")
    outputs = [(feat_dir, data_dir)] if not layers else [  # (its jobs' outputs, the data dir it goes to)
        (layer_dir(feat_dir, n), data_dir.parent / f"{data_dir.name}_layer{n}") for n in layers]
    joined = [_joined(src, name, nj, data_dir, utts, log_dir, max_failed_frac, pool, update_data_dir)
              for src, _ in outputs]  # every check before any write
    for (src, target), (entries, frames) in zip(outputs, joined):
        if pool != "none":
            _collect_vectors(src, entries, data.utt2spk)
        elif update_data_dir:
            if target != data_dir:  # a layer's data dir: a copy of the input's tables
                subset_data_dir(data_dir, target, set(utts), data.utt2spk, drop=FEATURE_FILES)
                print(f"{PROG}: {src.name}: {target}", file=sys.stderr)
            _update_data_dir(target, src / f"{name}.1", entries, frames if write_utt2num_frames else None)
    return len(joined[0][0]), len(utts)


def _joined(src, name, nj, data_dir, utts, log_dir, max_failed_frac, pool, update_data_dir):
    """(scp entries, utt2num_frames rows) of jobs 1..nj in ``src``, sorted; <log-dir>/failed;
    an error when too many utterances failed."""
    entries, failed, frames = [], [], []
    for n in range(1, nj + 1):
        job = f"{name}.{n}"
        entries += _read_table(src / f"{job}.scp")
        failed += _read_table(src / f"{job}.failed")
        frames += _read_table(src / f"{job}.utt2num_frames")
    known = set(utts)
    strangers = [k for k, _ in entries + failed if k not in known]
    if strangers:  # cannot happen with fresh jobs; never let it reach a data dir
        raise JobsError(f"the jobs' outputs hold {len(strangers)} utterance(s) not in {data_dir}, "
                        f"e.g. {strangers[0]}: rerun with --stage 0")
    by_key = lambda item: item[0].encode()  # noqa: E731 - LC_ALL=C order, as Kaldi sorts
    entries.sort(key=by_key)
    failed.sort(key=by_key)
    frames.sort(key=by_key)
    write_scp_like(log_dir / "failed", failed)
    total, done = len(utts), len(entries)
    if done == 0 or done < total * (1.0 - max_failed_frac):
        done_keys = {k for k, _ in entries}
        missing = [u for u in utts if u not in done_keys][:10]
        raise JobsError(
            f"only {done} of {total} utterances were featurized (less than "
            f"{100 * (1 - max_failed_frac):g}%); failed, e.g.:\n" + "\n".join(missing) + "\n"
            f"the reasons are in {log_dir}/failed and {log_dir}/featurize_*.log; "
            f"{'the data dir is unchanged' if pool == 'none' and update_data_dir else 'nothing was collected'}")
    if done != total:
        print(f"{PROG}: {total - done} of {total} utterances failed (see {log_dir}/failed); "
              f"utils/fix_data_dir.sh drops them from the other tables", file=sys.stderr)
    return entries, frames


def _collect_vectors(feat_dir, entries, utt2spk):
    """xvector.scp over all jobs, and speaker means over all of each speaker's utterances."""
    from speech_reps.kaldi import xvectors

    write_scp_like(feat_dir / "xvector.scp", entries)
    if utt2spk:
        xvectors.write_speaker_means(feat_dir, entries, utt2spk)


def _update_data_dir(data_dir, first_job, entries, frames):
    """New feats.scp etc. written beside, then renamed into place: an error before the renames
    leaves the data dir as it was."""
    stage = Path(tempfile.mkdtemp(prefix=".featurize.", dir=data_dir))
    try:
        write_scp_like(stage / "feats.scp", entries)
        new = ["feats.scp"]
        if frames is not None:
            write_scp_like(stage / "utt2num_frames", frames)
            new.append("utt2num_frames")
        shutil.copy(f"{first_job}.frame_shift", stage / "frame_shift")
        new.append("frame_shift")
        shutil.copytree(f"{first_job}.conf", stage / "conf")
        backup = data_dir / ".backup"
        for d in (backup, data_dir / "conf"):  # checked before the data dir changes at all
            if d.exists() and not d.is_dir():
                raise FileExistsError(errno.EEXIST, "exists and is not a directory", str(d))
        old = [f for f in ("feats.scp", "utt2num_frames", "frame_shift", "cmvn.scp") if (data_dir / f).is_file()]
        if old:
            backup.mkdir(exist_ok=True)
            for f in old:
                shutil.copy2(data_dir / f, backup / f)
            print(f"{PROG}: copied the old {', '.join(old)} of {data_dir} to {backup}", file=sys.stderr)
        (data_dir / "conf").mkdir(exist_ok=True)
        for f in new:
            os.replace(stage / f, data_dir / f)
        for f in sorted((stage / "conf").iterdir()):
            os.replace(f, data_dir / "conf" / f.name)
        if (data_dir / "cmvn.scp").is_file():  # stats of the old features: stale now (in .backup/)
            (data_dir / "cmvn.scp").unlink()
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def get_args(argv):
    parser = argparse.ArgumentParser(prog="python3 -m speech_reps.jobs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--nj", type=int, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--per-utt", choices=("true", "false"), required=True)
    for a in ("data_dir", "log_dir", "feat_dir"):
        p.add_argument(a)
    p = sub.add_parser("progress")
    p.add_argument("--interval", type=float, default=30.0)
    p.add_argument("--nj", type=int, required=True)
    p.add_argument("data_dir")
    p.add_argument("log_template")
    p = sub.add_parser("failures")
    p.add_argument("--nj", type=int, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("log_template")
    p.add_argument("feat_dir")
    p = sub.add_parser("collect")
    p.add_argument("--nj", type=int, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--pool", default="none")
    p.add_argument("--max-failed-frac", type=float, default=0.05)
    p.add_argument("--write-utt2num-frames", choices=("true", "false"), default="true")
    p.add_argument("--update-data-dir", choices=("true", "false"), default="true")
    p.add_argument("--layer", default="", help="the featurize.py --layer given (N,M,...: a sweep)")
    for a in ("data_dir", "log_dir", "feat_dir"):
        p.add_argument(a)
    return parser.parse_args(argv)


def main(argv=None):
    args = get_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "prepare":
            prepare(args.data_dir, args.log_dir, args.feat_dir, args.name, args.nj, args.per_utt == "true")
        elif args.command == "progress":
            watch(job_logs(args.log_template, args.nj), len(_utterances(args.data_dir)[1]), args.interval)
        elif args.command == "failures":
            failures(args.log_template, args.feat_dir, args.name, args.nj)
        else:
            done, total = collect(args.data_dir, args.log_dir, args.feat_dir, args.name, args.nj, args.pool,
                                  args.max_failed_frac, args.write_utt2num_frames == "true",
                                  args.update_data_dir == "true",
                                  [int(x) for x in args.layer.split(",")] if "," in args.layer else None)
            what = "xvectors in" if args.pool != "none" else "features in"
            print(f"{PROG}: featurized {done} of {total} utterances of {args.data_dir}; {what} {args.feat_dir}",
                  file=sys.stderr)
    except SpeechRepsError as e:
        for line in str(e).splitlines():
            print(f"{PROG}: {line}", file=sys.stderr)
        return 1
    except OSError as e:  # the data dir or the feature dir unwritable, a full disk
        print(f"{PROG}: cannot write {e.filename or args.feat_dir}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
