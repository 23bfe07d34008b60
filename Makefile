# repast: `make demo` runs the quickstart on the embedded default; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
# The demo installs only what scripts/demo.sh runs (the `demo` extra, without byte-compiling every
# module up front: Python caches the ones the demo imports); the tests install the `test` extra. Separate stamps, so `make test` after `make demo` in the same .venv installs the rest.
DEMO_STAMP := $(VENV)/.installed-demo-$(SUM)
STAMP := $(VENV)/.installed-test-$(SUM)
# `make demo-size`: a fresh demo environment must stay within these bounds (MB on disk).
DEMO_MAX_MB ?= 400
DEMO_SIZE_VENV ?= $(or $(TMPDIR),/tmp)/repast-demo-size-venv

.PHONY: demo demo-size test lint typecheck unit bench docs docs-build clean

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e ".[demo]"
	rm -f $(VENV)/.installed-demo-*; touch $(DEMO_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*; touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

# Installs the demo extra into a throwaway venv and fails when what it installed (every package but the
# installer itself: pip and setuptools, which every venv has) exceeds DEMO_MAX_MB.
demo-size:
	rm -rf $(DEMO_SIZE_VENV)
	$(PYTHON) -m venv $(DEMO_SIZE_VENV)
	$(DEMO_SIZE_VENV)/bin/pip install --quiet --upgrade pip
	$(DEMO_SIZE_VENV)/bin/pip install --quiet --no-compile ".[demo]"
	@total=$$(du -sm $(DEMO_SIZE_VENV) | cut -f1); \
	  size=$$(du -sm --exclude='pip' --exclude='pip-*' --exclude='setuptools*' --exclude='pkg_resources' \
	    --exclude='_distutils_hack' --exclude='distutils-precedence.pth' $(DEMO_SIZE_VENV) | cut -f1); \
	  rm -rf $(DEMO_SIZE_VENV); \
	  echo "demo environment: $$size MB installed for the demo ($$total MB with pip and setuptools), bound $(DEMO_MAX_MB) MB"; \
	  if [ "$$size" -gt $(DEMO_MAX_MB) ]; then \
	    echo "Error: the demo installs $$size MB, over $(DEMO_MAX_MB) MB: put the new dependency in an extra the demo does not install"; \
	    exit 1; fi

# The API reference (repast and repast.types, from their docstrings) with pdoc; any pdoc warning fails
# the build. tests/docs/test_api_reference.py runs docs-build and checks references resolve.
DOCS_DIR ?= build/docs
docs: $(STAMP) docs-build

docs-build:
	$(BIN)/python -W error -m pdoc -o $(DOCS_DIR) repast '!repast\.(?!types$$).*'
	@echo "API reference: $(DOCS_DIR)/index.html"

lint: $(STAMP)
	$(BIN)/ruff check repast tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy repast

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	for b in historical materialize online_read serve; do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) demo_repo build/docs .pytest_cache .mypy_cache .ruff_cache
