#!/usr/bin/env bash
# Featurize a data dir in --nj parallel jobs launched with --cmd, like Kaldi's steps/make_fbank.sh.
# Writes <feat-dir>/raw_<model>_<name>.JOB.{ark,scp} and, in <data-dir>, feats.scp,
# utt2num_frames, frame_shift and conf/ (an old feats.scp goes to <data-dir>/.backup/).
# Fails when fewer than 95% of the utterances were featurized. A rerun skips the jobs that
# finished (their outputs are complete and record the same command).
set -euo pipefail

nj=4
cmd=run.pl
model=fbank
params=
fbank_config=
cmvn=
norm_vars=
output=
layer=
gpu=
batch_frames=
num_workers=
dtype=
fbank_backend=
compress=true
write_utt2num_frames=true
per_utt=false
stage=0
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<feat-dir>]]
 e.g.: $0 --nj 8 --cmd 'slurm.pl --gpu 1' --model decoar --gpu 0 data/train exp/featurize/train featurize
Note: <log-dir> defaults to <data-dir>/log, <feat-dir> to <data-dir>/data.
Options:
  --nj <n>                        # number of jobs (default: $nj)
  --cmd <launcher>                # run.pl, slurm.pl, queue.pl ... (default: $cmd)
  --model <name>                  # fbank, mfcc, decoar, wav2vec, wav2vec2, hubert, trill ... (default: $model)
  --params <file>                 # model weights (default: the one in conf/<model>.yaml)
  --fbank-config <conf>           # Kaldi option file for the front end
  --cmvn <none|utt|spk>, --norm-vars <true|false>, --output <name>, --layer <n>   # see steps/featurize.py
  --gpu <n>                       # run each job's model on GPU n (use with a GPU launcher)
  --batch-frames <n>              # frames per model call
  --num-workers <n>               # processes per job reading audio + CPU front end ahead of the model
  --dtype <float32|tf32|bfloat16|float16>  # model precision (default: float32)
  --fbank-backend <native|torch|kaldi>  # front end (default: native; torch on a GPU)
  --compress <true|false>         # Kaldi compressed matrices (default: $compress)
  --write-utt2num-frames <true|false>  # write <data-dir>/utt2num_frames (default: $write_utt2num_frames)
  --per-utt <true|false>          # split by utterance, not by speaker (default: $per_utt)
  --stage <n>                     # 0: split, 1: featurize, 2: collect (default: $stage)"

echo "$0 $*"
. "$(dirname "$0")/../utils/parse_options.sh"
if [ $# -lt 1 ] || [ $# -gt 3 ]; then printf '%s\n' "$help_message" >&2; exit 1; fi

steps=$(cd "$(dirname "$0")" && pwd)
data=$1
logdir=${2:-$data/log}
featdir=${3:-$data/data}
name=$(basename "$data")
raw=raw_${model}_${name}
mkdir -p "$logdir" "$featdir"
featdir=$(cd "$featdir" && pwd)
[ -f "$data/wav.scp" ] || { echo "$0: no such file $data/wav.scp" >&2; exit 1; }
split_opt=; $per_utt && split_opt=--per-utt
sdata=$data/split${nj}$($per_utt && echo utt || true)

if [ "$stage" -le 0 ]; then
  "$steps/../utils/split_data.sh" $split_opt "$data" "$nj"
fi

if [ "$stage" -le 1 ]; then
  # jobs accept any failure rate: the 95% rule below judges the whole data dir
  opts=(--model "$model" --compress "$compress" --write-data-dir false --resume true --progress false
        --max-failed-frac 1)
  for opt in params fbank_config fbank_backend cmvn norm_vars output layer gpu dtype batch_frames num_workers; do
    [ -n "${!opt}" ] && opts+=("--${opt//_/-}" "${!opt}")
  done
  if ! $cmd JOB=1:"$nj" "$logdir/featurize_${name}.JOB.log" \
      "$steps/featurize.py" "${opts[@]}" --name "$raw.JOB" "$sdata/JOB" "$featdir"; then
    echo "$0: some jobs failed; see $logdir/featurize_${name}.*.log" >&2
  fi
fi

if [ "$stage" -le 2 ]; then
  if [ -f "$data/feats.scp" ]; then
    mkdir -p "$data/.backup"
    echo "$0: moving $data/feats.scp to $data/.backup"
    mv "$data/feats.scp" "$data/.backup/"
  fi
  for n in $(seq "$nj"); do
    [ -f "$featdir/$raw.$n.scp" ] && cat "$featdir/$raw.$n.scp"
  done | LC_ALL=C sort -k1,1 > "$data/feats.scp"
  if $write_utt2num_frames; then
    for n in $(seq "$nj"); do
      [ -f "$featdir/$raw.$n.utt2num_frames" ] && cat "$featdir/$raw.$n.utt2num_frames"
    done | LC_ALL=C sort -k1,1 > "$data/utt2num_frames"
  fi
  for n in $(seq "$nj"); do
    [ -f "$featdir/$raw.$n.failed" ] && cat "$featdir/$raw.$n.failed"
  done | LC_ALL=C sort -k1,1 > "$logdir/failed"
  [ -f "$featdir/frame_shift" ] && cp "$featdir/frame_shift" "$data/frame_shift"
  if [ -d "$featdir/conf" ]; then mkdir -p "$data/conf"; cp "$featdir"/conf/* "$data/conf/"; fi

  if [ -f "$data/segments" ]; then utts=$data/segments; else utts=$data/wav.scp; fi
  total=$(wc -l < "$utts")
  done_=$(wc -l < "$data/feats.scp")
  if [ $((done_ * 100)) -lt $((total * 95)) ]; then
    echo "$0: only $done_ of $total utterances were featurized (less than 95%); failed, e.g.:" >&2
    LC_ALL=C comm -23 <(cut -d' ' -f1 "$utts" | LC_ALL=C sort) <(cut -d' ' -f1 "$data/feats.scp") | head -n 10 >&2
    echo "$0: the reasons are in $logdir/failed and $logdir/featurize_${name}.*.log" >&2
    exit 1
  fi
  if [ "$done_" -ne "$total" ]; then
    echo "$0: $((total - done_)) of $total utterances failed (see $logdir/failed);" \
         "utils/validate_data_dir.py will list the mismatch" >&2
  fi
  echo "$0: featurized $done_ of $total utterances of $data with $model into $featdir"
fi
