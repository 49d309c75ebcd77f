# speech-reps: every install step lives here.
#   make test    create .venv if missing, install what the tests need, run the test suite
#   make venv    just the environment
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU wheel of torch, pinned and installed first: an unpinned torch pulls GBs of CUDA wheels.
TORCH  := torch==2.13.0
TF_CPU := tensorflow-cpu==2.21.0
TF_HUB := tensorflow-hub==0.16.1 tf-keras==2.21.0
PYTEST_ARGS ?=

.PHONY: test venv clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[test]'
	# TRILL's TensorFlow, CPU build. tensorflow-hub and tf-keras go in without their dependencies,
	# which would pull the full 572 MB tensorflow on top; setuptools<81 keeps the pkg_resources
	# that tensorflow-hub imports. (On GPU hosts: pip install '.[trill]'.)
	$(PIP) install --quiet $(TF_CPU) "setuptools<81"
	$(PIP) install --quiet --no-deps $(TF_HUB)
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
