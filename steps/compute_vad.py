#!/usr/bin/env python3
"""Energy voice-activity detection of a Kaldi data dir: Kaldi MFCC, then Kaldi's compute-vad.

Writes <out-dir>/vad.ark and vad.scp (absolute paths): per utterance a Kaldi float vector of 1.0
(voiced) / 0.0, one per 10 ms MFCC frame, equal to real Kaldi's compute-vad on the same MFCC and
read by Kaldi's select-voiced-frames and by featurize.py --vad-scp. Like Kaldi's
sid/compute_vad_decision.sh it also puts vad.scp into <data-dir> (an existing one is moved to
<data-dir>/.backup/). <out-dir>/conf/ records the options; <out-dir>/failed lists utterances
that could not be read.

Usage: steps/compute_vad.py [options] <data-dir> <out-dir>
 e.g.: steps/compute_vad.py --vad-config conf/vad.conf data/train exp/vad_train
"""

import argparse
import logging
import sys

from speech_reps.cli_args import OneLineErrors, add_audio_args, setup_logging, str2bool, whole_number
from speech_reps.errors import SpeechRepsError

PROG = "compute_vad.py"


def get_args(argv=None):
    parser = OneLineErrors(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", metavar="<data-dir>")
    parser.add_argument("out_dir", metavar="<out-dir>")
    parser.add_argument("--mfcc-config", default=None, metavar="KALDI_CONF",
                        help="Kaldi MFCC option file; compute-vad thresholds its first coefficient "
                             "(default: the toolkit's conf/mfcc_vad.conf, VoxCeleb's MFCC with dither 0)")
    parser.add_argument("--vad-config", default=None, metavar="KALDI_CONF",
                        help="compute-vad option file: --vad-energy-threshold, --vad-energy-mean-scale, "
                             "--vad-frames-context, --vad-proportion-threshold, --omit-unvoiced-utts "
                             "(default: the toolkit's conf/vad.conf, VoxCeleb's; an empty file: Kaldi's defaults)")
    parser.add_argument("--write-data-dir", type=str2bool, default=True, metavar="true|false",
                        help="also put vad.scp into <data-dir>, as Kaldi's compute_vad_decision.sh "
                             "(default: true)")
    add_audio_args(parser)
    parser.add_argument("--num-workers", type=whole_number(0), default=0,
                        help="processes reading audio and computing MFCC (default: %(default)s)")
    parser.add_argument("--progress", type=str2bool, default=True, metavar="true|false",
                        help="progress bar on stderr (default: true)")
    return parser.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    setup_logging()
    logging.info("%s %s", PROG, " ".join(sys.argv[1:] if argv is None else argv))
    from speech_reps.vad_pipeline import compute_vad_data_dir

    try:
        summary = compute_vad_data_dir(
            args.data_dir, args.out_dir, mfcc_config=args.mfcc_config, vad_config=args.vad_config,
            allow_resample=args.allow_resample, channel=args.channel, num_workers=args.num_workers,
            progress=args.progress, update_data_dir=args.write_data_dir)
    except SpeechRepsError as e:
        for line in str(e).splitlines():
            print(f"{PROG}: {line}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: writing {e.filename or args.out_dir}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"{PROG}: {summary.line()}", file=sys.stderr)
    # compute-vad fails when no utterance had a voiced frame; a job of compute_vad.sh (no data dir
    # to update) leaves that to the script, which judges the whole data dir
    if summary.done == 0 and args.write_data_dir:
        print(f"{PROG}: no utterance had a voiced frame; see {args.out_dir}/failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
