#!/usr/bin/env python3
"""Featurize a Kaldi data dir: one job, all of its utterances.

Reads <data-dir>/{wav.scp,segments,utt2spk,spk2utt}; writes <out-dir>/feats.ark, feats.scp
(absolute paths), utt2num_frames, frame_shift, and <out-dir>/data/, a copy of the data dir
whose feats.scp, utt2num_frames, frame_shift and conf/ point at the new features.

Usage: steps/featurize.py [options] <data-dir> <out-dir>
 e.g.: steps/featurize.py --model fbank --cmvn utt --norm-vars true data/train exp/fbank_train
"""

import argparse
import logging
import sys
from pathlib import Path

from speech_reps.cli_args import add_model_args, fraction, model_options, setup_logging, str2bool, whole_number
from speech_reps.errors import SpeechRepsError
from speech_reps.pipeline import DEFAULT_BATCH_FRAMES, DEFAULT_NUM_WORKERS, featurize_data_dir

PROG = "featurize.py"


def get_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", metavar="<data-dir>")
    parser.add_argument("out_dir", metavar="<out-dir>")
    add_model_args(parser)
    parser.add_argument("--compress", type=str2bool, default=False, metavar="true|false",
                        help="write Kaldi compressed matrices (default: false)")
    parser.add_argument("--batch-frames", type=whole_number(1), default=DEFAULT_BATCH_FRAMES,
                        help="padded output frames per model call: utterances are bucketed by length "
                             "into calls of at most this size (default: %(default)s)")
    parser.add_argument("--num-workers", type=whole_number(0), default=DEFAULT_NUM_WORKERS,
                        help="processes reading audio and computing the CPU front end ahead of the "
                             "model; 0: in the main process. The output does not depend on it "
                             "(default: %(default)s)")
    parser.add_argument("--pool", default="none", choices=("none", "mean"),
                        help="mean: one vector per utterance, written as xvector.scp / spk_xvector.scp "
                             "like Kaldi's extract_xvectors.sh (default: none, frame-level feats.scp)")
    parser.add_argument("--max-failed-frac", type=fraction, default=0.05,
                        help="exit non-zero when more than this fraction of the utterances failed; "
                             "they are listed in <out-dir>/failed either way (default: %(default)s)")
    parser.add_argument("--name", default="feats",
                        help="prefix of the outputs: <name>.ark, <name>.scp (default: %(default)s)")
    parser.add_argument("--write-data-dir", type=str2bool, default=True, metavar="true|false",
                        help="also write <out-dir>/data, the data dir pointing at the features (default: true)")
    parser.add_argument("--resume", type=str2bool, default=False, metavar="true|false",
                        help="exit at once if <out-dir>/<name>.done records this very command "
                             "(a finished job of an earlier run)")
    parser.add_argument("--progress", type=str2bool, default=True, metavar="true|false",
                        help="progress bar on stderr (default: true)")
    return parser.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    setup_logging()
    command = " ".join(sys.argv[1:] if argv is None else argv)
    logging.info("%s %s", PROG, command)
    done = Path(args.out_dir) / f"{args.name}.done"
    if args.resume and done.is_file() and done.read_text() == command + "\n":
        logging.info("%s: already done by an earlier run (%s); skipping", PROG, done)
        return 0
    if done.exists():
        done.unlink()
    try:
        summary = featurize_data_dir(
            args.data_dir, args.out_dir, model=args.model, model_options=model_options(args),
            compress=args.compress, allow_resample=args.allow_resample, channel=args.channel,
            batch_frames=args.batch_frames, progress=args.progress, pool=args.pool,
            name=args.name, data_copy=args.write_data_dir, num_workers=args.num_workers,
            pipe_timeout=args.pipe_timeout,
        )
    except SpeechRepsError as e:
        for line in str(e).splitlines():
            print(f"{PROG}: {line}", file=sys.stderr)
        return 1
    except OSError as e:  # disk full, file too large...: what was finished stays resumable
        print(f"{PROG}: writing {e.filename or args.out_dir}: {e.strerror or e}; rerun the same "
              "command to resume", file=sys.stderr)
        return 1
    print(summary.line(), file=sys.stderr)
    if summary.failed_fraction > args.max_failed_frac or summary.done == 0 and summary.failed > 0:
        print(f"{PROG}: {summary.failed} of {summary.done + summary.failed} utterances failed, more than "
              f"--max-failed-frac {args.max_failed_frac:g}; see {args.out_dir}/failed", file=sys.stderr)
        return 1
    done.write_text(command + "\n")  # last: marks the job complete for --resume
    return 0


if __name__ == "__main__":
    sys.exit(main())
