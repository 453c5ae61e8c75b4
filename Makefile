# Liquid State Spaces: the two commands of the README are `make book` and `make test`.
# Both create the virtual environment .venv and install everything on first use.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first, pinned: on the project machines `torch==2.13.0` resolves to the local CPU wheel;
# an unpinned torch would pull several GB of CUDA packages. Override on a GPU box if needed.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
PROFILE ?= smoke
REMOTE ?=
STAMP := $(VENV)/.installed-$(EXTRAS)

# quiet, relocatable pykeops; headless matplotlib; caches inside the checkout
export KEOPS_VERBOSE := 0
export PYKEOPS_VERBOSE := 0
export KEOPS_CACHE_FOLDER := $(CURDIR)/.cache/keops
export MPLBACKEND := Agg
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export JUPYTER_PLATFORM_DIRS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

CHAPTERS := $(shell find book -name '*.md' -not -path '*/_build/*' | sort)
NBTEST := _build/nbtest

.PHONY: help install test unit lint nbtest book check-site publish reproduce bench env clean gpu-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@touch $@

install: $(STAMP)  ## create .venv and install the library, the book and test tools

lint: $(STAMP)  ## ruff on the library and the tests
	$(VENV)/bin/ruff check src tests

unit: $(STAMP)  ## the library's unit tests (pytest exits non-zero when nothing is collected)
	$(VENV)/bin/pytest tests -q --durations=10

nbtest: $(STAMP)  ## every chapter converted by jupytext and executed under pytest --nbval-lax
	rm -rf $(NBTEST)
	@for md in $(CHAPTERS); do \
	  if grep -q '^```{code-cell}' "$$md"; then \
	    out="$(NBTEST)/$${md#book/}"; mkdir -p "$$(dirname "$$out")"; \
	    $(VENV)/bin/jupytext --quiet --to ipynb -o "$${out%.md}.ipynb" "$$md"; \
	  fi; \
	done
	@n=$$(find $(NBTEST) -name '*.ipynb' | wc -l); echo "nbtest: $$n chapters converted"; test "$$n" -gt 0
	$(VENV)/bin/pytest --nbval-lax --nbval-current-env -p no:cacheprovider -q \
	  --durations=0 --durations-min=5 -o testpaths= $(NBTEST)

test: lint unit nbtest  ## THE test command: lint, unit tests, every chapter under nbval

book: $(STAMP)  ## execute every chapter (smoke profile) and build the site into _build/html
	$(PY) -m liquidssm.book.cache
	$(VENV)/bin/jupyter-book build . -W --keep-going
	@test -f _build/html/index.html && echo "book: open _build/html/index.html"

check-site:  ## typeset check of the built site in headless Chromium with no network
	$(PY) -m liquidssm.book.site _build/html

publish:  ## build the book and push _build/html to the gh-pages branch: make publish REMOTE=origin
	@test -n "$(REMOTE)" || { echo "make publish: set REMOTE (a git remote name or URL), e.g. make publish REMOTE=origin" >&2; exit 2; }
	$(MAKE) book
	$(PY) -m liquidssm.book.publish push --remote "$(REMOTE)" _build/html

reproduce: $(STAMP)  ## run the reproduction chapters with papermill: make reproduce PROFILE=full
	$(PY) -m liquidssm.book.reproduce --profile $(PROFILE)

gpu-check: $(STAMP)  ## on one GPU, 8 min: plan every table on CUDA, train two full entries, check the CUDA paths; writes data/benchmarks/gpu-check-<date>.json
	$(PY) -m liquidssm.bench.gpu_check $(GPU_CHECK_ARGS)

env: $(STAMP)  ## print what the library detects (torch, devices, pykeops)
	$(PY) -m liquidssm.environment

clean:  ## remove build outputs (keeps .venv)
	rm -rf _build .pytest_cache .ruff_cache
