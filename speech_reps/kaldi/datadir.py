"""The Kaldi data dir as speech-reps reads it, validated before any work starts.

Reads ``wav.scp`` (plain paths, ``cmd |`` pipes, ``file.ark:offset``), optional ``segments``
(``<utt> <rec> <start> <end> [<channel>]``, end -1 = to the end), ``utt2spk`` and ``spk2utt``.
Every problem found is collected and raised together as a DataDirError, one line each.
"""

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from speech_reps.errors import DataDirError
from speech_reps.kaldi.tables import read_table, table_file_problem

_ARK_OFFSET = re.compile(r"^(.*):(\d+)$")
TABLES = ("wav.scp", "segments", "utt2spk", "spk2utt")


@dataclass(frozen=True)
class Utterance:
    utt: str
    rec: str
    rxfile: str  # the recording's wav.scp entry
    start: float = 0.0  # seconds
    end: float = -1.0  # seconds; -1: to the end of the recording
    channel: int = None  # from the segments file's 5th field, if any
    spk: str = None

    @property
    def is_cut(self):
        """Whether this is a part of its recording: any segment but ``0 -1`` (the whole), also
        one whose id is its recording's id."""
        return (self.start, self.end) != (0.0, -1.0)

    @property
    def source(self):
        """How an error names where this utterance's audio comes from."""
        if self.rec == self.utt and not self.is_cut:
            return self.rxfile
        return f"{self.rxfile} [{self.start:g}s..{self.end:g}s of {self.rec}]"


def rxfile_kind(rxfile):
    """'pipe', 'ark' (file.ark:offset) or 'path'."""
    if rxfile.endswith("|"):
        return "pipe"
    if rxfile.startswith("|"):
        return "bad"
    if _ARK_OFFSET.match(rxfile):
        return "ark"
    return "path"


def rxfile_path(rxfile):
    """The file a non-pipe rxfilename reads (the archive for file.ark:offset)."""
    m = _ARK_OFFSET.match(rxfile)
    return m.group(1) if m else rxfile


def rxfile_problem(rxfile):
    """Why a non-pipe rxfilename cannot be read (missing file, a directory, an archive offset past
    the end), or None."""
    path = rxfile_path(rxfile)
    if os.path.isdir(path):
        return f"is a directory, not an audio file: {path}"
    if not os.path.isfile(path):
        if os.path.exists(path):  # a FIFO, a device: Kaldi reads regular files
            return f"not a regular file (a device or a FIFO): {path}"
        return f"file not found: {path}"
    m = _ARK_OFFSET.match(rxfile)
    if m:
        size = os.path.getsize(path)
        if int(m.group(2)) >= size:
            return f"offset {m.group(2)} is past the end of {path} ({size} bytes)"
    return None


class DataDir:
    """A validated Kaldi data dir. ``utterances`` is in sorted utterance order."""

    def __init__(self, path, utterances, has_segments, utt2spk, spk2utt, audio_problems=()):
        self.path = Path(path)
        # lenient loading: problems of single utterances' audio (missing file, bad segment
        # times), reported before work; those utterances then fail one by one
        self.audio_problems = list(audio_problems)
        self.utterances = utterances
        self.has_segments = has_segments
        self.utt2spk = utt2spk  # {} when the dir has no utt2spk
        self.spk2utt = spk2utt

    def __len__(self):
        return len(self.utterances)

    @classmethod
    def load(cls, path, check_files=True, lenient=False):
        """Validate and load; ``lenient``: missing audio files and bad segment times are
        returned in ``audio_problems`` instead of being errors (the featurizer's choice: one
        bad utterance must not stop a job)."""
        path = Path(path)
        problems, audio_problems = [], []
        audio = audio_problems if lenient else problems
        wav_scp = path / "wav.scp"
        if not path.is_dir():
            raise DataDirError([f"{path}: not a directory"])
        unreadable = [p for p in map(table_file_problem, (path / n for n in TABLES)) if p]
        if unreadable:
            raise DataDirError(unreadable)
        if not wav_scp.is_file():
            raise DataDirError([f"{wav_scp}: missing (a data dir needs wav.scp)"])
        recordings = {}
        for row in read_table(wav_scp, problems):
            kind = rxfile_kind(row.rest)
            if kind == "bad":
                problems.append(f"{row.where}: {row.key}: output pipes ('| cmd') cannot be read")
            elif check_files and kind != "pipe":
                problem = rxfile_problem(row.rest)
                if problem:
                    audio.append(f"{row.where}: {row.key}: {problem}")
            recordings[row.key] = row.rest
        if not recordings and not problems:
            problems.append(f"{wav_scp}: empty")

        utterances = cls._utterances(path, recordings, problems, audio)
        utt2spk, spk2utt = cls._speakers(path, [u.utt for u in utterances], problems)
        if problems:
            raise DataDirError(problems)
        if utt2spk:
            utterances = [Utterance(**{**u.__dict__, "spk": utt2spk[u.utt]}) for u in utterances]
        return cls(path, utterances, (path / "segments").is_file(), utt2spk, spk2utt, audio_problems)

    @staticmethod
    def _utterances(path, recordings, problems, audio_problems):
        segments = path / "segments"
        if not segments.is_file():
            return [Utterance(rec, rec, rx) for rec, rx in recordings.items()]
        out = []
        rows = read_table(segments, problems, min_fields=3, max_fields=4)
        if not rows and not problems:
            problems.append(f"{segments}: empty (remove it to use whole recordings)")
        for row in rows:
            rec, start, end = row.fields[:3]
            try:
                start, end = float(start), float(end)
                channel = int(row.fields[3]) if len(row.fields) == 4 else None
            except ValueError:
                problems.append(f"{row.where}: {row.key}: start, end and channel must be numbers")
                continue
            if not (math.isfinite(start) and math.isfinite(end)):
                audio_problems.append(f"{row.where}: {row.key}: invalid segment {start:g}..{end:g} "
                                      "(times must be finite numbers)")
            elif start < 0 or (end != -1 and end <= start) or (channel is not None and channel < 0):
                audio_problems.append(f"{row.where}: {row.key}: invalid segment {start:g}..{end:g}")
            if rec not in recordings:
                problems.append(f"{row.where}: {row.key}: recording {rec} is not in wav.scp")
                continue
            out.append(Utterance(row.key, rec, recordings[rec], start, end, channel))
        return out

    @staticmethod
    def _speakers(path, utts, problems):
        utt2spk_file, spk2utt_file = path / "utt2spk", path / "spk2utt"
        utt2spk, spk2utt = {}, {}
        if utt2spk_file.is_file():
            rows = read_table(utt2spk_file, problems, min_fields=1, max_fields=1)
            utt2spk = {r.key: r.fields[0] for r in rows}
            known = set(utts)
            for r in rows:
                if r.key not in known:
                    problems.append(f"{r.where}: {r.key}: utterance has no audio (not in "
                                    f"{'segments' if (path / 'segments').is_file() else 'wav.scp'})")
            missing = [u for u in utts if u not in utt2spk]
            if missing:
                problems.append(f"{utt2spk_file}: {missing[0]}: utterance missing from utt2spk"
                                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        if spk2utt_file.is_file():
            if not utt2spk_file.is_file():  # (an empty or unreadable one is reported above)
                problems.append(f"{spk2utt_file}: present without utt2spk")
            rows = read_table(spk2utt_file, problems, min_fields=1)
            listed = set()
            for r in rows:
                spk2utt[r.key] = r.fields
                for utt in r.fields:
                    listed.add(utt)
                    if utt2spk and utt2spk.get(utt) != r.key:
                        problems.append(f"{r.where}: {r.key}: lists {utt}, but utt2spk maps it to "
                                        f"{utt2spk.get(utt, 'nothing')}")
            for utt, spk in utt2spk.items():
                if utt not in listed:
                    problems.append(f"{spk2utt_file}: {spk}: does not list {utt} (utt2spk maps it to {spk})")
        elif utt2spk:
            for utt, spk in utt2spk.items():
                spk2utt.setdefault(spk, []).append(utt)
        return utt2spk, spk2utt
