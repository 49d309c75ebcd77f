#!/usr/bin/env bash
# Energy VAD of a data dir in --nj parallel jobs launched with --cmd, like Kaldi's
# sid/compute_vad_decision.sh, but from the audio (Kaldi MFCC, then compute-vad; see
# steps/compute_vad.py). Writes <vad-dir>/vad_<name>.JOB/vad.{ark,scp} and <data-dir>/vad.scp
# (an old one goes to <data-dir>/.backup/); unreadable utterances are listed in <log-dir>/failed.
set -euo pipefail

nj=4
cmd=run.pl
mfcc_config=
vad_config=
num_workers=
per_utt=false
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<vad-dir>]]
 e.g.: $0 --nj 8 --cmd run.pl --vad-config conf/vad.conf data/train exp/make_vad/train vad
Note: <log-dir> defaults to <data-dir>/log, <vad-dir> to <data-dir>/data.
Options:
  --nj <n>                        # number of jobs (default: $nj)
  --cmd <launcher>                # run.pl, slurm.pl, queue.pl ... (default: $cmd)
  --mfcc-config <conf>            # Kaldi MFCC options (default: the toolkit's conf/mfcc_vad.conf)
  --vad-config <conf>             # compute-vad options (default: the toolkit's conf/vad.conf)
  --num-workers <n>               # processes per job reading audio (default: compute_vad.py's)
  --per-utt <true|false>          # split by utterance, not by speaker (default: $per_utt)"

echo "$0 $*"
. "$(dirname "$0")/../utils/parse_options.sh"
if [ $# -lt 1 ] || [ $# -gt 3 ]; then printf '%s\n' "$help_message" >&2; exit 1; fi
[[ $nj =~ ^[1-9][0-9]*$ ]] || { echo "$0: --nj $nj: expected a positive number of jobs" >&2; exit 1; }

steps=$(cd "$(dirname "$0")" && pwd)
data=$1
logdir=${2:-$data/log}
vaddir=${3:-$data/data}
name=$(basename "$data")
mkdir -p "$logdir" "$vaddir"
vaddir=$(cd "$vaddir" && pwd)
[ -f "$data/wav.scp" ] || { echo "$0: no such file $data/wav.scp" >&2; exit 1; }
split_opt=; $per_utt && split_opt=--per-utt
sdata=$data/split${nj}$($per_utt && echo utt || true)
"$steps/../utils/split_data.sh" $split_opt "$data" "$nj"

opts=(--write-data-dir false --progress false)
for opt in mfcc_config vad_config num_workers; do
  [ -n "${!opt}" ] && opts+=("--${opt//_/-}" "${!opt}")
done
if ! $cmd JOB=1:"$nj" "$logdir/vad_${name}.JOB.log" \
    "$steps/compute_vad.py" "${opts[@]}" "$sdata/JOB" "$vaddir/vad_${name}.JOB"; then
  for n in $(seq "$nj"); do  # each failed job with its last error line, as featurize.sh does
    log=$logdir/vad_${name}.$n.log
    grep -q "^# Ended (code 0)" "$log" 2>/dev/null && continue
    echo "$0: job $n failed: $(grep -v '^#' "$log" 2>/dev/null | grep -v '^[[:space:]]*$' | tail -n 1) ($log)" >&2
  done
  echo "$0: $data is unchanged" >&2
  exit 1
fi

# the new vad.scp written beside, then renamed into place (the old one kept in .backup/)
for n in $(seq "$nj"); do
  [ -f "$vaddir/vad_${name}.$n/vad.scp" ] && cat "$vaddir/vad_${name}.$n/vad.scp"
done | LC_ALL=C sort -k1,1 > "$data/.vad.scp.new"
if [ ! -s "$data/.vad.scp.new" ]; then  # compute-vad's rule: no voiced frame in any utterance
  rm -f "$data/.vad.scp.new"
  echo "$0: no utterance got VAD output (see $logdir/failed); $data is unchanged" >&2
  for n in $(seq "$nj"); do
    [ -f "$vaddir/vad_${name}.$n/failed" ] && cat "$vaddir/vad_${name}.$n/failed"
  done | LC_ALL=C sort -k1,1 > "$logdir/failed"
  exit 1
fi
if [ -f "$data/vad.scp" ]; then
  mkdir -p "$data/.backup"
  echo "$0: copying $data/vad.scp to $data/.backup"
  cp "$data/vad.scp" "$data/.backup/"
fi
mv "$data/.vad.scp.new" "$data/vad.scp"
for n in $(seq "$nj"); do
  [ -f "$vaddir/vad_${name}.$n/failed" ] && cat "$vaddir/vad_${name}.$n/failed"
done | LC_ALL=C sort -k1,1 > "$logdir/failed"

if [ -f "$data/segments" ]; then utts=$data/segments; else utts=$data/wav.scp; fi
nc=$(wc -l < "$data/vad.scp")
nu=$(wc -l < "$utts")
if [ "$nc" -ne "$nu" ]; then
  echo "$0: only $nc of $nu utterances got VAD output (see $logdir/failed);" \
       "utils/fix_data_dir.sh would drop the others" >&2
  [ "$nc" -eq 0 ] && exit 1
fi
echo "$0: created VAD output for $name: $nc utterances, $data/vad.scp"
