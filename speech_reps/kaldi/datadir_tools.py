"""Data dir housekeeping as Kaldi's utils/ scripts do it: fix (keep the utterances every file
knows), combine (several dirs into one), copy. Tables stay sorted (LC_ALL=C) and spk2utt is
rebuilt from utt2spk."""

import shutil
from pathlib import Path

from speech_reps.errors import DataDirError
from speech_reps.kaldi.output_dir import REC_KEYED, SPK_KEYED, UTT_KEYED, subset_data_dir
from speech_reps.kaldi.writer import write_scp_like

TABLES = UTT_KEYED | SPK_KEYED | REC_KEYED


def _lines(path):
    """The lines of a table as text: a line that is not UTF-8 is a DataDirError naming it (a
    table's other bytes, e.g. a latin-1 transcript, only matter where the text is rewritten)."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataDirError([f"{path}:{lineno}: not UTF-8 (byte 0x{raw[e.start]:02x} at column "
                                    f"{e.start + 1})"]) from None


def _keys(path):
    # keys only: the rest of a line may be in any encoding (subset_data_dir copies it as bytes)
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return [line.split(None, 1)[0] for line in f if line.strip()]


def _utt2spk(data):
    path = Path(data) / "utt2spk"
    if not path.is_file():
        raise DataDirError([f"{path}: missing (every Kaldi data dir needs utt2spk)"])
    return dict(line.split()[:2] for line in _lines(path) if line.strip())


def fix_data_dir(data):
    """Keep the utterances that utt2spk, wav.scp/segments, text and feats.scp all have; the
    originals go to <data>/.backup. Returns (kept, dropped) counts."""
    data = Path(data)
    utt2spk = _utt2spk(data)
    keep = set(utt2spk)
    for name in ("segments", "text", "feats.scp", "utt2num_frames", "utt2dur"):
        if (data / name).is_file():
            keep &= set(_keys(data / name))
    if (data / "segments").is_file():
        recs = set(_keys(data / "wav.scp")) if (data / "wav.scp").is_file() else None
        if recs is not None:
            keep &= {p[0] for p in (line.split() for line in _lines(data / "segments")) if len(p) > 1 and p[1] in recs}
    elif (data / "wav.scp").is_file():
        keep &= set(_keys(data / "wav.scp"))
    backup = data / ".backup"
    backup.mkdir(exist_ok=True)
    tmp = data.parent / f".{data.name}.fixing"
    subset_data_dir(data, tmp, keep, utt2spk, drop={".backup"})
    for item in tmp.iterdir():
        if (data / item.name).is_file():
            shutil.copy2(data / item.name, backup / item.name)
        shutil.move(str(item), data / item.name)
    tmp.rmdir()
    return len(keep), len(utt2spk) - len(keep)


def combine_data_dirs(dest, sources):
    """Concatenate the tables that every source has (a key in two sources is an error)."""
    sources = [Path(s) for s in sources]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = [n for n in sorted(TABLES) if all((s / n).is_file() for s in sources)]
    for name in names:
        rows, origin = {}, {}
        for s in sources:
            for line in _lines(s / name):
                key = line.split(None, 1)[0] if line.strip() else None
                if key is None:
                    continue
                if key in rows:
                    raise DataDirError([f"{s / name}: {key}: also in {origin[key]}; cannot combine"])
                rows[key], origin[key] = line.rstrip("\n").split(None, 1)[1], s / name
        write_scp_like(dest / name, ((k, rows[k]) for k in sorted(rows, key=str.encode)))
    utt2spk = _utt2spk(dest)
    spk2utt = {}
    for utt in sorted(utt2spk, key=str.encode):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    write_scp_like(dest / "spk2utt", ((s, " ".join(u)) for s, u in sorted(spk2utt.items(), key=lambda x: x[0].encode())))
    shifts = {(s / "frame_shift").read_text() for s in sources if (s / "frame_shift").is_file()}
    if len(shifts) == 1:
        (dest / "frame_shift").write_text(shifts.pop())
    return names


def copy_data_dir(src, dest):
    """Copy a data dir's files (not its split*/ or .backup/)."""
    src, dest = Path(src), Path(dest)
    utt2spk = _utt2spk(src)
    subset_data_dir(src, dest, set(utt2spk), utt2spk)
