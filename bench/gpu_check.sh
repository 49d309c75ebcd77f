#!/usr/bin/env bash
# The GPU check, one command (make gpu-check): on a host with a CUDA GPU and its own Python with
# a CUDA build of torch, and no network, it
#   1. installs the project (pip --no-deps) and the wheels of its dependencies that the host
#      lacks, from --wheels (bench/gpu_wheels.sh downloads them where a registry is reachable);
#   2. runs the GPU tests (tests/gpu, marker gpu): every torch model batched vs one by one and
#      GPU vs CPU in float32, TF32 flags, half precision, golden Kaldi fbank/MFCC/CMVN on the GPU,
#      Kaldi's compressed matrix on the GPU byte for byte against the golden archives, whole jobs
#      on the GPU against each utterance alone, the out-of-memory retry under a memory cap;
#   3. runs whole jobs on the GPU (python -m bench.end_to_end): DeCoAR on a corpus of --hours,
#      compressed and float32 arks against the raw write rate, float32 and bfloat16; wav2vec 2.0
#      and HuBERT against the model's calls alone; fbank; GPU busy, start-up to first batch;
#   4. prints the other tables for docs/benchmarks.md: python -m bench.startup (start-up part by
#      part), python -m bench.compress_rate (Kaldi compression on the GPU, bytes checked against
#      numpy's), Hugging Face transformers' loops on the GPU against the engine (python -m bench
#      --peers; the peers' wheels from --wheels/peers, installed apart), bench/model_throughput.py,
#      python -m bench.gpu_parity, and python -m bench (engine vs seed-style).
# The steps run in that order (the tests first: a number from code that fails them is worth
# nothing), --steps picks some of them; every step runs even when one before it failed; all of
# them together stay within --time-limit seconds (a step cut short, or not reached, is
# reported). Without a CUDA GPU the GPU tests are skipped, with the reason, and the benchmarks
# are left out. Exit status: non-zero when a step failed.
set -uo pipefail

python=  # default: .venv/bin/python where it exists (a checkout with make venv), else python3
wheels=.cache/gpu-wheels
site=/tmp/speech-reps-site
peers_site=/tmp/speech-reps-peers  # Hugging Face transformers and its dependencies, for one step
install=true
device=cuda:0
minutes=10
hours=10
time_limit=540
steps=tests,e2e,startup,compress,peers,model,parity,bench
e2e_runs=decoar,fbank,wav2vec2,decoar-arks
e2e_budget=230
e2e_args=
log=
help_message="Usage: $0 [options]
 e.g.: $0 --log /tmp/gpu_check.log   # on a CUDA host; first, where pip works: bench/gpu_wheels.sh
Options:
  --python <python>      # the Python with a CUDA build of torch (default: .venv/bin/python, else python3)
  --wheels <dir>         # carried wheels of the dependencies (default: $wheels)
  --site <dir>           # where they and the project are installed (default: $site)
  --install <true|false> # install first (default: $install)
  --device <dev>         # torch device (default: $device)
  --minutes <n>          # corpus size for python -m bench (default: $minutes)
  --hours <n>            # corpus size for python -m bench.end_to_end (default: $hours)
  --time-limit <s>       # all steps together (default: $time_limit)
  --steps <list>         # which steps run, in their fixed order (default: $steps)
  --e2e-runs <list>      # the whole jobs of step e2e (bench.end_to_end --runs; default: $e2e_runs)
  --e2e-budget <s>       # seconds for them (default: $e2e_budget)
  --e2e-args <args>      # more bench.end_to_end options, e.g. \"--fbank-workers 8\"
  --log <file>           # also write everything printed there"

. utils/parse_options.sh || exit 1
if [ $# -ne 0 ]; then
  echo "$help_message" >&2
  exit 1
fi
if [ -z "$python" ]; then
  python=python3
  [ -x .venv/bin/python ] && python=$PWD/.venv/bin/python
fi
case $python in */*) [[ $python == /* ]] || python=$PWD/$python ;; esac  # the install check runs elsewhere
if [ -n "$log" ]; then
  mkdir -p "$(dirname "$log")"
  exec > >(tee "$log") 2>&1
fi
export PYTHONUNBUFFERED=1

start=$SECONDS
summary=()
wanted() { [[ ",$steps," == *",$1,"* ]]; }
failed=0

# step <name> <seconds at most> <command...>: runs it within what is left of --time-limit.
step() {
  local name=$1 cap=$2 left rc begin
  shift 2
  left=$((time_limit - (SECONDS - start)))
  if [ "$left" -lt 10 ]; then
    summary+=("$(printf '%-44s %6s  %s' "$name" - "not run: --time-limit $time_limit s reached")")
    failed=1
    return
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  echo
  echo "== $name (at most ${cap} s) =="
  begin=$SECONDS
  if declare -F "$1" >/dev/null; then  # a function of this script: no timeout(1) for it
    "$@"
  else
    timeout --kill-after=10 "$cap" "$@"
  fi
  rc=$?
  local status=ok
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    status="cut short after $cap s"
  elif [ $rc -ne 0 ]; then
    status="failed (exit $rc)"
  fi
  [ "$status" = ok ] || failed=1
  summary+=("$(printf '%-44s %6s  %s' "$name" "$((SECONDS - begin)) s" "$status")")
}

install_offline() {
  local missing
  # a carried wheel goes in only when the host lacks that package (its own versions stay)
  missing=$("$python" - "$wheels"/*.whl <<'EOF'
import importlib.metadata
import os
import sys

for wheel in sys.argv[1:]:
    if not os.path.isfile(wheel):
        continue
    try:
        importlib.metadata.version(os.path.basename(wheel).split("-")[0])
    except importlib.metadata.PackageNotFoundError:
        print(wheel)
EOF
  ) || return 1
  echo "carried wheels installed: ${missing:-none needed}" | tr '\n' ' '; echo
  if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$site" $missing || return 1
  fi
  if ! "$python" -m pip install --quiet --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir \
      --upgrade --target "$site" .; then
    # (no setuptools on the host, say): the steps still run, from this checkout
    echo "the project did not install; the steps import it from $PWD"
    export PYTHONPATH="$PWD:$PYTHONPATH"
  fi
  # the steps run from this checkout, whose speech_reps/ comes first on sys.path: its compiled
  # kernels are built in place too (optional: numpy computes the same without them)
  "$python" setup.py --quiet build_ext --inplace >/dev/null 2>&1 || echo "the compiled kernels did not build in place"
  if ls "$wheels"/peers/*.whl >/dev/null 2>&1; then  # Hugging Face's, for the peers step only
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$peers_site" "$wheels"/peers/*.whl || echo "the peers' wheels did not install"
  fi
  (cd /tmp && "$python" -c 'import kaldiio, kaldi_native_fbank, soundfile, soxr, tqdm, yaml, speech_reps
from speech_reps.conf_dir import conf_dir
print("installed: speech_reps", speech_reps.__version__, "in", speech_reps.__file__, "with", conf_dir())
import glob, os.path
built = sorted(os.path.basename(p) for p in glob.glob(os.path.dirname(speech_reps.__file__) + "/*/_*_kernels*.so"))
print("compiled kernels:", ", ".join(built) or "none built (numpy computes the same; a compiler and Python headers build them)")')
}

# the Hugging Face loops on the GPU against the engine, same 20 min of audio, start-up included
hf_peers() {
  local left=$((time_limit - (SECONDS - start)))
  [ "$left" -gt 80 ] && left=80
  PYTHONPATH="$peers_site:${PYTHONPATH:-}" "$python" -c 'import transformers
print("Hugging Face transformers", transformers.__version__)' 2>&1 | tail -3
  PYTHONPATH="$peers_site:${PYTHONPATH:-}" BENCH_PEERS_PYTHON="$python" timeout --kill-after=10 "$left" \
    "$python" -m bench --models wav2vec2 --minutes 20 --device "$device" --seed-style false --peers \
      --work .cache/gpu-check/peers
}

echo "# speech-reps GPU check: $(git describe --always --dirty 2>/dev/null || echo "(no git)"), $(date -u '+%Y-%m-%d %H:%M UTC')"
if [ "$install" = true ]; then
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$site/bin:$PATH"
  step "install (offline, pip --no-deps)" 120 install_offline
fi

cuda=$("$python" -c 'import torch
print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>/dev/null)
"$python" -c 'import sys, numpy, torch
print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()})")'
if [ -n "$cuda" ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "GPU: $cuda"
else
  echo "no CUDA GPU visible to torch: the GPU tests are skipped (with the reason) and the benchmarks left out"
fi

# -rP: what passing tests print (half-precision errors, the memory cap used)
wanted tests && step "GPU tests (pytest tests/gpu)" 150 \
  "$python" -m pytest tests/gpu -v -rsP --durations=10 -p no:cacheprovider

if [ -n "$cuda" ] && wanted e2e; then
  step "whole jobs on the GPU (python -m bench.end_to_end), $hours h" $((e2e_budget + 20)) \
    "$python" -m bench.end_to_end --device "$device" --hours "$hours" --budget "$e2e_budget" --run-timeout 45 \
      --runs "$e2e_runs" --work .cache/gpu-check/e2e $e2e_args
fi

if [ -n "$cuda" ] && wanted startup; then
  step "start-up, part by part (python -m bench.startup)" 30 "$python" -m bench.startup --device "$device" --repeats 1
fi
if [ -n "$cuda" ] && wanted compress; then
  step "Kaldi compression on the GPU (python -m bench.compress_rate)" 40 \
    "$python" -m bench.compress_rate --rows 100,1000 --methods 1,2,3 --kaldiio false --repeats 3 \
      --device "$device"
fi
if [ -n "$cuda" ] && wanted peers; then
  step "against Hugging Face on the GPU (python -m bench --peers)" 80 hf_peers
fi
if [ -n "$cuda" ] && wanted model; then
  # one process for every model_throughput table (torch and CUDA start once)
  step "one model call at a time (bench/model_throughput.py)" 60 "$python" -c '
import sys
from bench.model_throughput import main
for model, batch in (("decoar", "128"), ("wav2vec2", "32")):
    for dtype in ("float32", "bfloat16"):
        main(["--model", model, "--dtype", dtype, "--device", sys.argv[1], "--seconds", "15", "--batch", batch,
              "--repeats", "2"])
        print(flush=True)
' "$device"
fi
if [ -n "$cuda" ] && wanted parity; then
  step "GPU parity tables (python -m bench.gpu_parity)" 90 \
    "$python" -m bench.gpu_parity --device "$device" --work .cache/gpu-check/checkpoints
fi
if [ -n "$cuda" ] && wanted bench; then
  step "engine vs seed-style (python -m bench), $minutes min" 130 \
    "$python" -m bench --models fbank,decoar,wav2vec2 --minutes "$minutes" --device "$device" \
      --work .cache/gpu-check/bench
fi

echo
echo "== summary: ${cuda:-no CUDA GPU}, $((SECONDS - start)) s in all =="
printf '%s\n' "${summary[@]}"
exit $failed
