# speech-reps: every install step lives here.
#   make test    create .venv if missing, install what the tests need, run the test suite
#   make venv    just the environment
#   make sysdeps the system packages the tests and the mini recipe use (apt-get, as root)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU wheel of torch, pinned and installed first: an unpinned torch pulls GBs of CUDA wheels.
TORCH  := torch==2.13.0
TF_CPU := tensorflow-cpu==2.21.0
TF_HUB := tensorflow-hub==0.16.1 tf-keras==2.21.0
# The GE2E speaker encoder's weights (--model ge2e) ride in this wheel; its code is never imported,
# so its dependencies (librosa, numba, webrtcvad) are left out.
RESEMBLYZER := resemblyzer==0.1.4
PYTEST_ARGS ?=

.PHONY: test venv sysdeps demo bench bench-peers clean

# System packages, installed here and never as a side effect of a test or a recipe stage:
# sox (wav.scp pipes), Asterisk's recorded prompts (the mini recipe's speech), a single-node
# Slurm with munge (tests/test_slurm.py), gcc (the compiled kernels of setup.py; webrtcvad,
# built in the GE2E parity venv).
# Nothing is installed when every package is present; without root, the missing ones are named.
SYSDEPS := sox asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-es-wav \
           slurmctld slurmd slurm-client munge gcc
sysdeps:
	@missing=$$(for p in $(SYSDEPS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	missing=$$(echo $$missing); \
	if [ "$$(id -u)" != 0 ]; then echo "make sysdeps: please install: $$missing (sudo apt-get install $$missing)" >&2; exit 1; fi; \
	echo "make sysdeps: installing $$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }

$(VENV)/.installed: pyproject.toml setup.py speech_reps/kaldi/_compress_kernels.c \
                    speech_reps/frontend/_fbank_kernels.c Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[test]'
	# TRILL's TensorFlow, CPU build. tensorflow-hub and tf-keras go in without their dependencies,
	# which would pull the full 572 MB tensorflow on top; setuptools<81 keeps the pkg_resources
	# that tensorflow-hub imports. (On GPU hosts: pip install '.[trill]'.)
	$(PIP) install --quiet $(TF_CPU) "setuptools<81"
	$(PIP) install --quiet --no-deps $(TF_HUB)
	$(PIP) install --quiet --no-deps $(RESEMBLYZER)
	touch $@

venv: $(VENV)/.installed

# sysdeps first: the venv's install compiles with gcc
test: sysdeps venv
	$(PY) -m pytest $(PYTEST_ARGS)

# The main job: the mini recipe, offline. fbank and ge2e (its weights come with the venv) always;
# every other model whose weights are in artifacts/.
demo: sysdeps venv
	cd egs/mini && ./run.sh --model ge2e
	@cd egs/mini && for m in $$($(CURDIR)/$(PY) -c 'from speech_reps.download import artifacts; print(*sorted({m for m, _ in artifacts().values()}))'); do \
	  ./run.sh --stage 3 --model $$m --download false 2>/dev/null || echo "demo: $$m skipped (no weights in artifacts/)"; \
	done
	@echo "demo: features in egs/mini/data/*_*/feats.scp; probe accuracies (speaker = language):"; \
	  for f in egs/mini/exp/probe_*/accuracy; do echo "  $$f: $$(cat $$f)"; done; \
	  echo "demo: equal-error rates (%) of cosine-scored xvector.scp, all pairs of test prompts:"; \
	  for f in egs/mini/exp/eer_*/eer; do echo "  $$f: $$(cat $$f)"; done

# Throughput and memory tables (docs/benchmarks.md): BENCH_ARGS="--models fbank,decoar,wav2vec2 --minutes 60 --device cuda:0"
BENCH_ARGS ?=
bench: venv
	$(PY) -m bench $(BENCH_ARGS)

# The peers `python -m bench --peers` measures the toolkit against (docs/benchmarks.md): lhotse's
# Fbank and Hugging Face transformers' Wav2Vec2Model/HubertModel, pinned, in a venv of their own
# so that they never enter the main one. CPU torch from its own index (a plain torch pulls CUDA);
# TORCH_CPU_INDEX= where pip's configured indexes already hold the CPU wheel.
# (urllib3: lhotse 1.33 imports it without declaring it.) Real Kaldi is not installed here: set KALDI_ROOT to a build of src/featbin.
PEERS_VENV := .cache/bench-peers
PEERS_PY   := $(PEERS_VENV)/bin/python
PEERS      := lhotse==1.33.0 transformers==5.23.0 kaldiio==2.18.1 soundfile==0.14.0 urllib3==2.8.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
$(PEERS_VENV)/.installed: Makefile
	test -x $(PEERS_PY) || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_PY) -m pip install --quiet --upgrade pip
	$(PEERS_PY) -m pip install --quiet $(TORCH) $(if $(TORCH_CPU_INDEX),--extra-index-url $(TORCH_CPU_INDEX))
	$(PEERS_PY) -m pip install --quiet $(PEERS)
	touch $@

bench-peers: $(PEERS_VENV)/.installed

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache speech_reps/*/_*_kernels*.so

# The GPU check, one command on a host with a CUDA GPU and no network: installs the project and
# the carried wheels (make gpu-wheels, run beforehand where pip reaches a registry, fills
# .cache/gpu-wheels), runs tests/gpu and prints the GPU benchmark tables (docs/benchmarks.md).
# Without a CUDA GPU the GPU tests are skipped with the reason. GPU_CHECK_ARGS="--log gpu_check.log"
GPU_CHECK_ARGS ?=
.PHONY: gpu-check gpu-wheels
gpu-check:
	bash bench/gpu_check.sh $(GPU_CHECK_ARGS)

gpu-wheels:
	bash bench/gpu_wheels.sh
