"""Data dirs derived from a data dir: subsets (as utils/subset_data_dir.sh and split_data.sh make
them) and the ready-to-use output dir that points at new features.

Files keyed by utterance, speaker or recording are filtered to what is kept (what Kaldi's
utils/fix_data_dir.sh would do), other files are copied, spk2utt is rebuilt from utt2spk.
"""

import shutil
from pathlib import Path

from speech_reps.kaldi.writer import write_scp_like

UTT_KEYED = {"utt2spk", "text", "segments", "utt2dur", "utt2lang", "utt2uniq", "utt2warp",
             "utt2gender", "utt2category", "feats.scp", "utt2num_frames", "vad.scp"}
SPK_KEYED = {"spk2gender", "spk2warp", "cmvn.scp"}
REC_KEYED = {"wav.scp", "reco2file_and_channel", "reco2dur"}
# stale once the features change: the output dir gets new ones
FEATURE_FILES = {"feats.scp", "cmvn.scp", "utt2num_frames", "frame_shift"}


def _filter_lines(src, dst, keep):
    # as bytes: files we do not validate (text, utt2lang...) may hold any encoding, as in Kaldi
    keep = {k.encode() for k in keep}
    with open(src, "rb") as f, open(dst, "wb") as out:
        for line in f:
            parts = line.split(None, 1)
            if parts and parts[0] in keep:
                out.write(line)


def subset_data_dir(src, dst, keep, utt2spk, drop=()):
    """Write the data dir ``src`` restricted to utterances ``keep`` into ``dst`` (replaced)."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    keep_spk = {utt2spk[u] for u in keep if u in utt2spk}
    keep_rec = keep
    if (src / "segments").is_file():
        with open(src / "segments", encoding="utf-8") as f:
            keep_rec = {p[1] for p in (line.split() for line in f) if p and p[0] in keep}
    for item in sorted(src.iterdir()):
        if not item.is_file() or item.name in drop or item.name == "spk2utt":
            continue
        if item.name in UTT_KEYED:
            _filter_lines(item, dst / item.name, keep)
        elif item.name in SPK_KEYED:
            _filter_lines(item, dst / item.name, keep_spk)
        elif item.name in REC_KEYED:
            _filter_lines(item, dst / item.name, keep_rec)
        else:
            shutil.copy2(item, dst / item.name)
    if utt2spk:
        spk2utt = {}
        for utt in sorted(keep, key=str.encode):
            spk2utt.setdefault(utt2spk[utt], []).append(utt)
        write_scp_like(dst / "spk2utt", ((s, " ".join(us)) for s, us in
                                         sorted(spk2utt.items(), key=lambda x: x[0].encode())))


def write_output_data_dir(src, dst, feats_scp, utt2num_frames, frame_shift, conf_files, utt2spk):
    """Build ``dst`` from data dir ``src`` for the utterances in ``feats_scp``.

    feats_scp: [(utt, "ark:offset")] of the utterances that succeeded; utt2num_frames: {utt: n};
    conf_files: {name: text} written under dst/conf/; utt2spk: the input's map (may be empty).
    """
    dst = Path(dst)
    subset_data_dir(src, dst, {utt for utt, _ in feats_scp}, utt2spk, drop=FEATURE_FILES)
    write_scp_like(dst / "feats.scp", feats_scp)
    write_scp_like(dst / "utt2num_frames", ((u, utt2num_frames[u]) for u, _ in feats_scp))
    (dst / "frame_shift").write_text(f"{frame_shift:g}\n")
    (dst / "conf").mkdir()
    for name, text in conf_files.items():
        (dst / "conf" / name).write_text(text, encoding="utf-8")
