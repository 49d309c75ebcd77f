"""Splitting a data dir into N parts, as Kaldi's utils/split_data.sh does.

Per speaker (default): whole speakers go to each part, in order, balanced by utterance count
(a speaker's utterances never straddle two jobs, so per-speaker CMVN stays right); per
utterance (``per_utt``): contiguous runs of nearly equal size. Parts go to
``<data>/split<N>/<n>`` (``split<N>utt`` per utterance), n = 1..N.
"""

from pathlib import Path

from speech_reps.errors import DataDirError
from speech_reps.kaldi.datadir import DataDir
from speech_reps.kaldi.output_dir import subset_data_dir


def _balanced_runs(sizes, n):
    """Cut the sequence of sizes into n contiguous non-empty runs of nearly equal total."""
    total, runs, current, done = sum(sizes), [], [], 0
    for i, size in enumerate(sizes):
        current.append(i)
        done += size
        remaining_items, remaining_runs = len(sizes) - i - 1, n - len(runs) - 1
        if remaining_runs > 0 and (done >= total * (len(runs) + 1) / n or remaining_items == remaining_runs):
            runs.append(current)
            current = []
    runs.append(current)
    return runs


def split_data_dir(data_dir, n, per_utt=False, split_dir=None):
    """Split ``data_dir`` into ``n`` parts in ``split_dir`` (default: <data_dir>/split<N>[utt]);
    returns the split directory. An utterance whose audio is bad (a missing file, a zero-length
    segment) goes into its part like any other: its job names it and goes on."""
    data = DataDir.load(data_dir, check_files=False, lenient=True)
    utts = [u.utt for u in data.utterances]
    if per_utt or not data.utt2spk:
        units = [[u] for u in utts]
        what = "utterances"
    else:
        units = [data.spk2utt[s] for s in sorted(data.spk2utt, key=str.encode)]
        what = "speakers"
    if n < 1 or n > len(units):
        raise DataDirError([f"{data_dir}: cannot split {len(units)} {what} into {n} parts"
                            + ("; use --per-utt or fewer jobs" if what == "speakers" else "")])
    split_dir = Path(split_dir or Path(data_dir) / f"split{n}{'utt' if per_utt else ''}")
    for part, run in enumerate(_balanced_runs([len(u) for u in units], n), 1):
        keep = {utt for i in run for utt in units[i]}
        subset_data_dir(data_dir, split_dir / str(part), keep, data.utt2spk)
    return split_dir
