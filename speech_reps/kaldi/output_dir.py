"""The ready-to-use output data dir: a copy of the input pointing at the new features.

Files keyed by utterance, speaker or recording are copied; when some utterances failed they
are filtered to the ones that have features (what Kaldi's utils/fix_data_dir.sh would do), so
utils/validate_data_dir.sh passes. Stale feature files of the input (feats.scp, cmvn.scp,
utt2num_frames, frame_shift) are not copied; the new ones and conf/ are written.
"""

import shutil
from pathlib import Path

from speech_reps.kaldi.writer import write_scp_like

UTT_KEYED = {"utt2spk", "text", "segments", "utt2dur", "utt2lang", "utt2uniq", "utt2warp",
             "utt2gender", "utt2category"}
SPK_KEYED = {"spk2gender", "spk2warp"}
REC_KEYED = {"wav.scp", "reco2file_and_channel", "reco2dur"}
REPLACED = {"feats.scp", "cmvn.scp", "utt2num_frames", "frame_shift", "spk2utt"}


def _filter_lines(src, dst, keep):
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
        for line in f:
            parts = line.split(None, 1)
            if parts and parts[0] in keep:
                out.write(line)


def write_output_data_dir(src, dst, feats_scp, utt2num_frames, frame_shift, conf_files, utt2spk):
    """Build ``dst`` from data dir ``src``.

    feats_scp: [(utt, "ark:offset")] of the utterances that succeeded; utt2num_frames: {utt: n};
    conf_files: {name: text} written under dst/conf/; utt2spk: the input's map (may be empty).
    """
    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    kept = {utt for utt, _ in feats_scp}
    kept_spk = {utt2spk[u] for u in kept if u in utt2spk}
    kept_rec = None
    if (src / "segments").is_file():
        with open(src / "segments", encoding="utf-8") as f:
            kept_rec = {p[1] for p in (line.split() for line in f) if p and p[0] in kept}
    for item in sorted(src.iterdir()):
        if not item.is_file() or item.name in REPLACED:
            continue
        name = item.name
        if name in UTT_KEYED:
            _filter_lines(item, dst / name, kept)
        elif name in SPK_KEYED:
            _filter_lines(item, dst / name, kept_spk)
        elif name in REC_KEYED:
            _filter_lines(item, dst / name, kept_rec if kept_rec is not None else kept)
        else:
            shutil.copy2(item, dst / name)
    if utt2spk:
        spk2utt = {}
        for utt in sorted(kept, key=str.encode):
            spk2utt.setdefault(utt2spk[utt], []).append(utt)
        write_scp_like(dst / "spk2utt", ((s, " ".join(us)) for s, us in
                                         sorted(spk2utt.items(), key=lambda x: x[0].encode())))
    write_scp_like(dst / "feats.scp", feats_scp)
    write_scp_like(dst / "utt2num_frames", ((u, utt2num_frames[u]) for u, _ in feats_scp))
    (dst / "frame_shift").write_text(f"{frame_shift:g}\n")
    (dst / "conf").mkdir()
    for name, text in conf_files.items():
        (dst / "conf" / name).write_text(text, encoding="utf-8")
