"""Energy VAD of a data dir, as Kaldi's compute-mfcc-feats | compute-vad and sid/compute_vad_decision.sh.

Audio -> Kaldi MFCC (our front end, any Kaldi MFCC option file) -> compute-vad (kaldi/vad.py)
-> <out-dir>/vad.ark + vad.scp (absolute paths), and <data-dir>/vad.scp as Kaldi's script leaves it
(an existing one is moved to <data-dir>/.backup/ first). Utterances that cannot be read fail one
by one into <out-dir>/failed ("<utt> <reason>").
"""

import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from speech_reps import __version__
from speech_reps.conf_dir import default_conf
from speech_reps.errors import AudioError
from speech_reps.engine.inputs import InputSpec
from speech_reps.kaldi import DataDir
from speech_reps.kaldi.vad import VadOptions, compute_vad, write_vad
from speech_reps.kaldi.writer import write_scp_like
from speech_reps.models.registry import create
from speech_reps.engine.prefetch import read_ahead

log = logging.getLogger(__name__)


@dataclass
class VadSummary:
    done: int  # utterances with a voiced frame
    failed: int  # utterances that could not be read
    unvoiced: int  # utterances with no voiced frame (written unless omit-unvoiced-utts)
    frames: int
    voiced_frames: int

    def line(self):
        share = self.voiced_frames / max(1, self.frames)
        return (f"done {self.done} utterances, failed {self.failed}, completely unvoiced {self.unvoiced}; "
                f"proportion of voiced frames {share:.6g} over {self.frames} frames")


def compute_vad_data_dir(data_dir, out_dir, mfcc_config=None, vad_config=None, allow_resample=False,
                         channel=None, num_workers=0, progress=True, update_data_dir=True):
    """VAD decisions of every utterance of ``data_dir`` into ``out_dir``; returns a VadSummary.

    mfcc_config: Kaldi MFCC option file (default: the toolkit's conf/mfcc_vad.conf, VoxCeleb's);
    vad_config: compute-vad option file (default: conf/vad.conf, VoxCeleb's; an empty file gives
    Kaldi's defaults); update_data_dir: also write <data_dir>/vad.scp.
    """
    data = DataDir.load(data_dir, lenient=True)
    for problem in data.audio_problems:
        log.error("%s", problem)
    mfcc_config = Path(mfcc_config) if mfcc_config else default_conf("mfcc_vad.conf")
    vad_config = Path(vad_config) if vad_config else default_conf("vad.conf")
    mfcc = create("mfcc", feature_config=mfcc_config)  # cmvn none: compute-vad reads raw c0
    opts = VadOptions.from_file(vad_config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    decisions, failures, unvoiced, frames, voiced = {}, {}, 0, 0, 0
    bar = tqdm(total=len(data), unit="utt", file=sys.stderr, disable=not progress, desc="vad")
    for item in read_ahead(data.utterances, InputSpec.for_model(mfcc, allow_resample, channel), num_workers):
        bar.update(1)
        utt = item.utt
        if item.error is not None or len(item.input) == 0:
            error = item.error or AudioError(utt.utt, utt.source, "empty feature matrix")
            log.error("%s", error)
            failures[utt.utt] = error.cause
            continue
        vad = compute_vad(item.input, opts)
        frames, voiced = frames + len(vad), voiced + int(vad.sum())
        if not vad.any():
            log.warning("No frames were judged voiced for utterance %s", utt.utt)
            unvoiced += 1
            if opts.omit_unvoiced_utts:
                continue
        decisions[utt.utt] = vad
    bar.close()

    write_vad(out_dir / "vad.ark", out_dir / "vad.scp", decisions)
    write_scp_like(out_dir / "failed", sorted(failures.items(), key=lambda x: x[0].encode()))
    (out_dir / "conf").mkdir(exist_ok=True)
    header = f"options used by speech-reps {__version__}"
    (out_dir / "conf" / "mfcc.conf").write_text(mfcc.frontend.options.to_conf_text(
        f"compute-mfcc-feats {header}"), encoding="utf-8")
    (out_dir / "conf" / "vad.conf").write_text(opts.to_conf_text(f"compute-vad {header}"), encoding="utf-8")
    if update_data_dir:
        _install_vad_scp(data.path, out_dir / "vad.scp")
    done = len(decisions) - (0 if opts.omit_unvoiced_utts else unvoiced)  # compute-vad's "successfully"
    return VadSummary(done, len(failures), unvoiced, frames, voiced)


def _install_vad_scp(data_dir, vad_scp):
    """<data_dir>/vad.scp := ``vad_scp``; an existing one goes to <data_dir>/.backup/ (as Kaldi's
    compute_vad_decision.sh does), unless it is the same file."""
    target = data_dir / "vad.scp"
    if target.exists() and target.resolve() != vad_scp.resolve():
        (data_dir / ".backup").mkdir(exist_ok=True)
        log.info("moving %s to %s/.backup", target, data_dir)
        shutil.move(str(target), str(data_dir / ".backup" / "vad.scp"))
    if target.resolve() != vad_scp.resolve():
        shutil.copyfile(vad_scp, target)
