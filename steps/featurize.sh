#!/usr/bin/env bash
# Featurize a data dir in --nj parallel jobs launched with --cmd, like Kaldi's steps/make_fbank.sh.
# Stage 0 checks what is the same for every job (data dir, options, weights, dirs) once, on the
# console, and splits the data dir (by utterance; by speaker with --cmvn spk) into
# <log-dir>/split<N>[utt]; stage 1 runs steps/featurize.py on each part, writing
# <feat-dir>/raw_<model>_<name>.JOB.{ark,scp} and <log-dir>/featurize_<name>.JOB.log; stage 2, only
# when every job finished and at most --max-failed-frac of the utterances failed, puts feats.scp,
# utt2num_frames, frame_shift and conf/ into <data-dir> (the old ones copied to <data-dir>/.backup/):
# on any failure <data-dir> is left as it was. A rerun reuses a job only when its inputs (tables,
# audio files), option values and the code are unchanged. Every option of steps/featurize.py is
# accepted: those below are featurize.sh's own, the others are passed on to each job.
set -euo pipefail

# featurize.sh's own options
nj=4
cmd=run.pl
stage=0
per_utt=                # true: split by utterance; false: by speaker (default: by speaker only with --cmvn spk)
write_utt2num_frames=true
# options of featurize.py that featurize.sh uses itself
compress=true           # Kaldi's make_fbank.sh compresses too
name=                   # default: the data dir's basename
max_failed_frac=0.05    # Kaldi's 95% rule
resume=true
write_data_dir=true
progress=true
log_interval=30
check_only=false
own="nj cmd stage per_utt write_utt2num_frames compress name max_failed_frac resume write_data_dir progress log_interval check_only"

steps=$(cd "$(dirname "$0")" && pwd)
python=$(command -v python3)  # absolute: the jobs run it wherever the launcher puts them
# every other option of featurize.py, from featurize.py itself, so the two cannot drift
passed=$("$python" "$steps/featurize.py" --option-names)
for o in $passed; do
  [[ " $own " == *" $o "* ]] || printf -v "$o" '%s' ''
done

help_message="Usage: $0 [options] <data-dir> [<log-dir> [<feat-dir>]]
 e.g.: $0 --nj 8 --cmd 'slurm.pl --gpu 1' --model decoar --gpu 0 data/train exp/featurize/train featurize
Note: <log-dir> defaults to <data-dir>/log, <feat-dir> to <data-dir>/data.
Options:
  --nj <n>                        # number of jobs (default: $nj)
  --cmd <launcher>                # run.pl, slurm.pl, or Kaldi's own (default: $cmd)
  --stage <n>                     # 0: check + split, 1: featurize, 2: collect (default: $stage)
  --per-utt <true|false>          # split by utterance (default: yes, unless --cmvn spk)
  --write-utt2num-frames <true|false>  # write <data-dir>/utt2num_frames (default: $write_utt2num_frames)
  --compress <true|false>         # Kaldi compressed matrices (default: $compress; never with --pool)
  --name <name>                   # archives <feat-dir>/raw_<model>_<name>.JOB.ark (default: the data dir's basename)
  --max-failed-frac <f>           # fail when more than this fraction of utterances failed (default: $max_failed_frac)
  --resume <true|false>           # reuse jobs an earlier run finished with the same inputs, options, code (default: $resume)
  --write-data-dir <true|false>   # put feats.scp etc. into <data-dir> (default: $write_data_dir)
  --progress <true|false>         # an overall progress line every --log-interval seconds (default: $progress)
  --log-interval <s>              # seconds between progress lines, here and in the job logs (default: $log_interval)
  --check-only <true|false>       # only check the data dir, options and weights (default: $check_only)
  --pool mean                     # utterance vectors: <feat-dir>/xvector.scp, spk_xvector.scp, num_utts.ark
                                  # (as Kaldi's extract_xvectors.sh); the data dir is not changed
Every other option of steps/featurize.py is passed on to the jobs:"
case " $* " in
  *" --help "*|*" -h "*) help_message+=$'\n'$("$python" "$steps/featurize.py" --help | sed -n '/^options:/,$p' | tail -n +2) ;;
esac

echo "$0 $*"
. "$steps/../utils/parse_options.sh"
if [ $# -lt 1 ] || [ $# -gt 3 ]; then printf '%s\n' "$help_message" >&2; exit 1; fi
case $per_utt in ""|true|false) ;; *) echo "$0: --per-utt: expected true or false, got '$per_utt'" >&2; exit 1 ;; esac
# featurize.sh's own numbers, checked before any work (featurize.py checks the options it is passed)
[[ $nj =~ ^[1-9][0-9]*$ ]] || { echo "$0: --nj $nj: expected a positive number of jobs" >&2; exit 1; }
[[ $stage =~ ^-?[0-9]+$ ]] || { echo "$0: --stage $stage: expected 0, 1 or 2" >&2; exit 1; }
number_in() {  # value low high: a number (as Python reads it) within [low, high]
  python3 -c 'import math, sys
try:
    v = float(sys.argv[1])
except ValueError:
    sys.exit(1)
sys.exit(not (math.isfinite(v) and float(sys.argv[2]) <= v <= float(sys.argv[3])))' "$@"
}
number_in "$max_failed_frac" 0 1 || {
  echo "$0: --max-failed-frac $max_failed_frac: expected a fraction from 0 to 1" >&2; exit 1; }
number_in "$log_interval" 1e-9 1e12 || {
  echo "$0: --log-interval $log_interval: expected a number of seconds > 0" >&2; exit 1; }

data=$1
logdir=${2:-$data/log}
featdir=${3:-$data/data}
[ -d "$data" ] || { echo "$0: $data: no such directory" >&2; exit 1; }
[ -f "$data/wav.scp" ] || { echo "$0: $data/wav.scp: missing (a data dir needs wav.scp)" >&2; exit 1; }
name=${name:-$(basename "$(cd "$data" && pwd)")}
opts=()
for o in $passed; do
  [[ " $own " == *" $o "* ]] || [ -z "${!o}" ] || opts+=("--${o//_/-}" "${!o}")
done
model_name=${model:-fbank}
raw=raw_${model_name}_$name
mkdir -p "$logdir" "$featdir" 2>/dev/null || { echo "$0: cannot create $logdir or $featdir" >&2; exit 1; }
featdir=$(cd "$featdir" && pwd)
logs=$logdir/featurize_$name.JOB.log

# Everything that is the same for all jobs, checked once, with the error on the console
resolved=$("$python" "$steps/featurize.py" --check-only true "${opts[@]}" --name "$raw" --write-data-dir false \
  --compress "$compress" "$data" "$featdir") || exit 1  # what the jobs write
$check_only && { echo "$0: $data: checks passed ($resolved)"; exit 0; }
read -r cmvn run <<< "$resolved"  # cmvn=<mode> run=<8 hex digits>
# This run's archives: <feat-dir>/raw_<model>_<name>.<run>.JOB.ark, <run> a hash of every option
# and input; another run (other options, audio or code) writes archives of another name, so the
# ones the data dir's feats.scp points at stay as they are until this run's stage 2 succeeds.
jobs_name=$raw.${run#run=}
if [ -z "$per_utt" ]; then
  per_utt=true; [ "$cmvn" = cmvn=spk ] && per_utt=false  # per-speaker stats need whole speakers
elif $per_utt && [ "$cmvn" = cmvn=spk ]; then
  echo "$0: --per-utt true with --cmvn spk: a speaker's statistics need all of its utterances in one job" \
    "(leave --per-utt out: the data dir is then split by speaker)" >&2
  exit 1
fi
sdata=$logdir/split$nj$($per_utt && echo utt || true)
# one run per <log-dir> at a time: a second would split the data dir again under the first one's
# jobs and truncate their logs (the lock goes with this shell, and with the jobs it starts)
if command -v flock > /dev/null; then
  exec 9> "$logdir/.featurize.lock"
  flock -n 9 || { echo "$0: $logdir: another featurize.sh is running with this log dir" \
                       "(it holds $logdir/.featurize.lock); wait for it, or use another log dir" >&2; exit 1; }
fi

if [ "$stage" -le 0 ]; then
  "$python" -m speech_reps.jobs prepare --nj "$nj" --name "$raw" --per-utt "$per_utt" "$data" "$logdir" "$featdir" || exit 1
fi

if [ "$stage" -le 1 ]; then
  monitor=
  trap '[ -z "$monitor" ] || kill "$monitor" 2>/dev/null; echo "$0: interrupted; $data is unchanged; rerun the same command to resume" >&2; exit 130' INT TERM
  if $progress; then
    "$python" -m speech_reps.jobs progress --interval "$log_interval" --nj "$nj" "$data" "$logs" 9>&- &
    monitor=$!
  fi
  # jobs accept any failure rate: the --max-failed-frac rule judges the whole data dir in stage 2
  failed=0
  $cmd JOB=1:"$nj" "$logs" "$python" "$steps/featurize.py" "${opts[@]}" --name "$jobs_name.JOB" \
    --compress "$compress" --resume "$resume" --write-data-dir false --progress false \
    --log-interval "$log_interval" --max-failed-frac 1 "$sdata/JOB" "$featdir" || failed=1
  [ -z "$monitor" ] || kill "$monitor" 2>/dev/null || true
  trap - INT TERM
  if [ $failed = 1 ]; then
    "$python" -m speech_reps.jobs failures --nj "$nj" --name "$jobs_name" "$logs" "$featdir" || true
    echo "featurize.sh: $data is unchanged" >&2
    exit 1
  fi
fi

if [ "$stage" -le 2 ]; then
  "$python" -m speech_reps.jobs collect --nj "$nj" --name "$jobs_name" --pool "${pool:-none}" \
    --max-failed-frac "$max_failed_frac" --write-utt2num-frames "$write_utt2num_frames" \
    --update-data-dir "$write_data_dir" --layer "${layer:-}" "$data" "$logdir" "$featdir" || exit 1
fi
