#!/usr/bin/env bash
# egs/mini: the whole path offline, on real recorded speech (Asterisk's prompts in three
# languages): data prep -> validation -> Kaldi fbank -> featurize with --model -> a language-ID
# probe on mean-pooled features, whose accuracy shows the features carry information ->
# utterance vectors (xvector.scp) and the equal-error rate of their cosine scores. Each language
# is one recorded voice, so the "speaker" of the probe and of the EER is also the language.
#   ./run.sh                         # everything: DeCoAR if its weights are in artifacts/, else ge2e
#   ./run.sh --model ge2e            # a real pretrained speaker encoder, offline (resemblyzer's wheel)
#   ./run.sh --model fbank           # fbank only, nothing downloaded
#   ./run.sh --stage 3 --model wav2vec --gpu 0
set -euo pipefail

stage=0
stop_stage=100
model=auto
nj=2
per_lang=40
gpu=
artifacts=
download=true
help_message="Usage: $0 [--stage N] [--stop-stage N] [--model NAME] [--nj N] [--per-lang N] [--gpu N]
          [--artifacts DIR] [--download true|false]
 e.g.: $0 --stage 2 --model decoar
Stages: 0 data prep, 1 validate, 2 fbank + probe, 3 featurize with --model + probe,
        4 utterance vectors with --model (--pool mean; then over voiced frames: --vad-scp) + cosine-scoring EER
--model: auto (default) is decoar when its weights are in --artifacts, else ge2e, whose weights
come with the toolkit's venv (the resemblyzer wheel)
--artifacts: where model weights are (default: \$SPEECH_REPS_ARTIFACTS, else the toolkit's artifacts/); --download false: do not
try utils/download_models.sh when they are missing"

cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. "$SPEECH_REPS_ROOT/utils/parse_options.sh"
for o in stage stop_stage nj per_lang; do  # numbers, checked before any stage runs
  [[ ${!o} =~ ^[0-9]+$ ]] || { echo "$0: --${o//_/-} ${!o}: expected a whole number" >&2; exit 1; }
done

root=$SPEECH_REPS_ROOT
artifacts=${artifacts:-${SPEECH_REPS_ARTIFACTS:-$root/artifacts}}
log() { echo "$(date '+%F %T') (run.sh:${BASH_LINENO[0]}) $*"; }

if [ "$model" = auto ]; then
  model=ge2e
  for f in $(python3 -m speech_reps.models.catalog weights decoar); do [ -e "$artifacts/$f" ] && model=decoar; done
  log "--model auto: $model"
fi

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

model_options() {  # sets opts=(--model ... [--params ...] [--gpu ...]) for $model, or exits
  opts=(--model "$model")
  [ -n "$gpu" ] && opts+=(--gpu "$gpu")
  [ "$model" = ge2e ] && return 0  # its weights are the venv's resemblyzer wheel's pretrained.pt
  files=$(python3 -m speech_reps.models.catalog weights "$model") || exit 1  # decoar: MXNet's, or the PyTorch one
  [ -n "$files" ] || { echo "run.sh: no weights file known for --model $model; use steps/featurize.sh --params" >&2; exit 1; }
  local params= f
  for f in $files; do [ -e "$artifacts/$f" ] && { params=$artifacts/$f; break; }; done
  if [ -z "$params" ] && $download && "$root/utils/download_models.sh" --artifacts "$artifacts" "$model" >/dev/null 2>&1; then
    params=$artifacts/${files%% *}
  fi
  if [ -z "$params" ]; then
    echo "run.sh: no $model weights: put ${files%% *} into $artifacts/ (utils/download_models.sh $model needs the internet), or run with --model ge2e or fbank, which run offline" >&2
    exit 1
  fi
  opts+=(--params "$params")
  [ "$model" = bertphone ] && opts+=(--fbank-config conf/bertphone.conf)  # 8 kHz model, 16 kHz pipes
  return 0
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
  log "Stage 3: featurize with $model and probe (speaker = language: one voice per language)"
  model_options
  featurize_and_probe "$model" "${opts[@]}"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ] && [ "$model" != fbank ]; then
  log "Stage 4: $model utterance vectors of the test prompts (xvector.scp), cosine scoring, EER"
  model_options
  rm -rf "exp/xvectors_$model"
  "$root/steps/featurize.py" "${opts[@]}" --pool mean --progress false data/test "exp/xvectors_$model/test"
  python3 local/score_xvectors.py --name "$model" data/test "exp/xvectors_$model/test" "exp/eer_$model"
  log "Stage 4: the same over voiced frames only: Kaldi's energy VAD (conf/vad.conf, VoxCeleb's) -> data/test/vad.scp"
  "$root/steps/compute_vad.py" --progress false data/test exp/vad/test
  rm -rf "exp/xvectors_${model}_vad"
  "$root/steps/featurize.py" "${opts[@]}" --pool mean --vad-scp data/test/vad.scp --progress false \
    data/test "exp/xvectors_${model}_vad/test"
  python3 local/score_xvectors.py --name "${model}_vad" data/test "exp/xvectors_${model}_vad/test" "exp/eer_${model}_vad"
fi

log "Done. Features: $(pwd)/data/{train,test}_*/feats.scp; probe accuracies: $(pwd)/exp/probe_*/accuracy; EERs: $(pwd)/exp/eer_*/eer"
