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

try:
    from speech_reps.cli_args import (OneLineErrors, add_model_args, fraction, model_options, positive_seconds,
                                      setup_logging, str2bool, whole_number)
    from speech_reps.errors import SpeechRepsError
    from speech_reps.engine.job import Job, check_job
    from speech_reps.engine.run import featurize_data_dir, mark_done, run_generation
except ImportError as e:  # run by a python without the toolkit's venv
    sys.exit(f"featurize.py: {e} (in {sys.executable}); source the toolkit's path.sh "
             "(. ./path.sh in a recipe dir), which activates its venv")

PROG = "featurize.py"
# what the output does not depend on (featurize.sh's run name leaves it out; the data dir counts by
# its tables and audio, not its path)
NOT_IN_OUTPUT = {"data_dir", "out_dir", "num_workers", "max_failed_frac", "resume", "progress", "log_interval",
                 "check_only"}


def build_parser():
    parser = OneLineErrors(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", metavar="<data-dir>")
    parser.add_argument("out_dir", metavar="<out-dir>")
    add_model_args(parser)
    parser.add_argument("--compress", type=str2bool, default=False, metavar="true|false",
                        help="write Kaldi compressed matrices (default: false)")
    parser.add_argument("--batch-frames", type=whole_number(1), default=None,
                        help="padded output frames per model call: utterances are bucketed by length "
                             "into calls of at most this size (default: by model and device, measured: "
                             "1, one utterance a call, for wav2vec2/hubert on a CPU; 3200 s of audio for "
                             "decoar and 1600 s for fbank/mfcc on a GPU; else 20000; speech_reps/defaults.py)")
    parser.add_argument("--num-workers", type=whole_number(0), default=None,
                        help="processes reading audio and computing the CPU front end ahead of the "
                             "model; 0: in the main process. The output does not depend on it "
                             "(default: 0 for fbank/mfcc on a CPU, half the cores within 4-8 on a GPU, else 1; "
                             "speech_reps/defaults.py)")
    parser.add_argument("--pool", default="none", choices=("none", "mean"),
                        help="mean: one vector per utterance, written as xvector.scp / spk_xvector.scp "
                             "like Kaldi's extract_xvectors.sh (default: none, frame-level feats.scp)")
    parser.add_argument("--vad-scp", default=None, metavar="FILE",
                        help="Kaldi vad.scp (e.g. <data-dir>/vad.scp from steps/compute_vad.py): keep only "
                             "voiced frames, as select-voiced-frames, or pool only them with --pool mean. "
                             "A model frame is voiced when at least half of the 10 ms VAD frames it spans "
                             "are (kaldi/vad.py). Never implicit: default none, every frame")
    parser.add_argument("--max-failed-frac", type=fraction, default=0.05,
                        help="exit non-zero when more than this fraction of the utterances failed; "
                             "they are listed in <out-dir>/failed either way (default: %(default)s)")
    parser.add_argument("--name", default="feats",
                        help="prefix of the outputs: <name>.ark, <name>.scp (default: %(default)s; "
                             "xvector with --pool mean)")
    parser.add_argument("--write-data-dir", type=str2bool, default=True, metavar="true|false",
                        help="also write <out-dir>/data, the data dir pointing at the features, and with "
                             "--pool mean the speaker means; false: only <name>.* (a job of "
                             "steps/featurize.sh) (default: true)")
    parser.add_argument("--resume", type=str2bool, default=False, metavar="true|false",
                        help="exit at once if an earlier run finished this job with the same inputs "
                             "(tables and audio files), option values and code (default: false: redo it; "
                             "a killed run is resumed either way)")
    parser.add_argument("--progress", type=str2bool, default=True, metavar="true|false",
                        help="progress bar on stderr; false: a progress line in the log every "
                             "--log-interval seconds (default: true)")
    parser.add_argument("--log-interval", type=positive_seconds, default=30.0, metavar="SECONDS",
                        help="with --progress false: seconds between progress lines (default: %(default)s)")
    parser.add_argument("--check-only", type=str2bool, default=False, metavar="true|false",
                        help="check the data dir, options, weights and <out-dir>, print the resolved "
                             "front end (cmvn=<mode>), and exit (default: false)")
    return parser


def get_args(argv=None):
    return build_parser().parse_args(argv)


def option_names(parser):
    """The --options of featurize.py, as shell variable names (for steps/featurize.sh)."""
    return [a.dest for a in parser._actions if a.option_strings and a.dest != "help"]


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if not argv:  # as Kaldi's tools: no arguments, the usage
        build_parser().print_help(sys.stderr)
        return 1
    if argv == ["--option-names"]:  # steps/featurize.sh takes every option of ours from here
        print(" ".join(option_names(build_parser())))
        return 0
    args = get_args(argv)
    setup_logging()
    if not args.check_only:
        logging.info("%s %s", PROG, " ".join(argv))
    options = model_options(args)
    try:
        if args.check_only:
            # the jobs may run where the GPUs are (--cmd 'slurm.pl --gpu 1'): checked on the CPU here
            if args.gpu is not None or (args.device or "").startswith("cuda"):
                options.update(gpu=None, device="cpu")
        job = Job(args.data_dir, args.out_dir, model=args.model, model_options=options, vad_scp=args.vad_scp,
                  compress=args.compress, pool=args.pool, name=args.name, data_copy=args.write_data_dir,
                  allow_resample=args.allow_resample, channel=args.channel, pipe_timeout=args.pipe_timeout,
                  batch_frames=args.batch_frames, num_workers=0 if args.check_only else args.num_workers,
                  reuse=args.resume, progress=args.progress, log_interval=args.log_interval)
        if args.check_only:
            checked = check_job(job)
            featurizer = checked.featurizer
            # what the output depends on, as given (not how fast it is made, nor where it goes)
            given = {k: str(v) for k, v in vars(args).items() if k not in NOT_IN_OUTPUT}
            print(f"cmvn={featurizer.frontend.cmvn if featurizer.frontend is not None else 'none'} "
                  f"run={run_generation(checked, given)}")
            return 0
        summary = featurize_data_dir(job)
    except SpeechRepsError as e:
        for line in str(e).splitlines():
            print(f"{PROG}: {line}", file=sys.stderr)
        return 1
    except OSError as e:  # disk full, file too large...: what was finished stays resumable
        print(f"{PROG}: writing {e.filename or args.out_dir}: {e.strerror or e}; rerun the same "
              "command to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; what was finished is kept: rerun the same command to resume",
              file=sys.stderr)
        return 130
    print(summary.line() + (" (reused: finished by an earlier run)" if summary.reused else ""),
          file=sys.stderr)
    all_failed = summary.done == 0 and summary.failed > 0 and args.max_failed_frac < 1  # 1: a job of featurize.sh
    if summary.failed_fraction > args.max_failed_frac or all_failed:
        print(f"{PROG}: {summary.failed} of {summary.done + summary.failed} utterances failed, more than "
              f"--max-failed-frac {args.max_failed_frac:g}; see {args.out_dir}/failed", file=sys.stderr)
        return 1
    if not summary.reused:
        mark_done(summary)  # last: --resume trusts it
    return 0


if __name__ == "__main__":
    sys.exit(main())
