#!/usr/bin/env bash
# egs/mini: the whole path offline, on real recorded speech (Asterisk's prompts in three
# languages): data prep -> validation -> Kaldi fbank -> featurize with --model -> a language-ID
# probe on mean-pooled features, whose accuracy shows the features carry information.
#   ./run.sh                         # everything, with DeCoAR (needs its weights in artifacts/)
#   ./run.sh --model fbank           # runs offline with nothing downloaded
#   ./run.sh --stage 3 --model wav2vec --gpu 0
set -euo pipefail

stage=0
stop_stage=100
model=decoar
nj=2
per_lang=40
gpu=
artifacts=
download=true
help_message="Usage: $0 [--stage N] [--stop-stage N] [--model NAME] [--nj N] [--per-lang N] [--gpu N]
          [--artifacts DIR] [--download true|false]
Stages: 0 data prep, 1 validate, 2 fbank + probe, 3 featurize with --model + probe
--artifacts: where model weights are (default: the toolkit's artifacts/); --download false: do not
try utils/download_models.sh when they are missing"

cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. "$SPEECH_REPS_ROOT/utils/parse_options.sh"

root=$SPEECH_REPS_ROOT
artifacts=${artifacts:-$root/artifacts}
log() { echo "$(date '+%F %T') (run.sh:${BASH_LINENO[0]}) $*"; }

featurize_and_probe() {  # name, then featurize.sh options
  local name=$1; shift
  for x in train test; do
    rm -rf "data/${x}_$name"
    mkdir -p "data/${x}_$name"
    cp data/$x/{wav.scp,utt2spk,spk2utt} "data/${x}_$name/"
    "$root/steps/featurize.sh" --nj "$nj" --cmd "$featurize_cmd" "$@" \
      "data/${x}_$name" "exp/featurize_$name/$x" "feats/$name"
  done
  python3 local/probe.py --name "$name" "data/train_$name" "data/test_$name" "exp/probe_$name"
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: data preparation (Asterisk prompts, en/fr/es, $per_lang per language)"
  local/prepare_data.sh --per-lang "$per_lang" data
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: validate the data dirs"
  for x in train test; do "$root/utils/validate_data_dir.py" "data/$x"; done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: Kaldi fbank (conf/fbank.conf) and its probe"
  featurize_and_probe fbank --model fbank --fbank-config conf/fbank.conf
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ] && [ "$model" != fbank ]; then
  log "Stage 3: featurize with $model and probe"
  case $model in
    decoar) files="decoar-encoder-29b8e2ac.params checkpoint_decoar.pt" ;;  # MXNet's, or the PyTorch one
    *) files=$(python3 -c "import sys; from speech_reps.download import ARTIFACTS as A; print(A[sys.argv[1]].file if sys.argv[1] in A else '')" "$model") ;;
  esac
  [ -n "$files" ] || { echo "run.sh: no weights file known for --model $model; use steps/featurize.sh --params" >&2; exit 1; }
  params=
  for f in $files; do [ -e "$artifacts/$f" ] && { params=$artifacts/$f; break; }; done
  if [ -z "$params" ] && $download && "$root/utils/download_models.sh" --artifacts "$artifacts" "$model" >/dev/null 2>&1; then
    params=$artifacts/${files%% *}
  fi
  if [ -z "$params" ]; then
    echo "run.sh: no $model weights: put ${files%% *} into $artifacts/ (utils/download_models.sh $model needs the internet), or run with --model fbank, which runs offline" >&2
    exit 1
  fi
  opts=(--model "$model" --params "$params")
  [ "$model" = bertphone ] && opts+=(--fbank-config conf/bertphone.conf)  # 8 kHz model, 16 kHz pipes
  [ -n "$gpu" ] && opts+=(--gpu "$gpu")
  featurize_and_probe "$model" "${opts[@]}"
fi

log "Done. Features: $(pwd)/data/{train,test}_*/feats.scp; probe accuracies: $(pwd)/exp/probe_*/accuracy"
