# speech-reps: every install step lives here.
#   make test    create .venv if missing, install what the tests need, run the test suite
#   make venv    just the environment
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU wheel of torch, pinned and installed first: an unpinned torch pulls GBs of CUDA wheels.
TORCH  := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: test venv clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
