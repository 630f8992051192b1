# Every target sets up its own environment first: nothing needs installing by hand.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo-output
# pip repeats one line per package about index folders this machine's pip config names but lacks: drop it.
PIPQUIET := { grep -v -e 'is ignored: it is neither a file nor a directory' -e 'BuildBackendWarning' || true; }

IMAGE  ?= mixtape-worker:0.1.0

.PHONY: demo test bench lint docs lock setup clean wheel image

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing mixtape and its locked dependencies into $(VENV) (first run only; a few minutes) ..."
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel 2>&1 | $(PIPQUIET)
	# every package at the exact version and sha256 requirements.lock records: torch the CPU wheel, the
	# score synthesiser tinysoundfont without PyAudio (its wheel lists it for live playback, never used)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock 2>&1 | $(PIPQUIET)
	$(BIN)/python -m pip install --quiet --no-deps -e . 2>&1 | $(PIPQUIET)
	touch $(STAMP)

# requirements.lock afresh from pyproject.toml (resolved in a temporary environment), after changing it
lock:
	$(PYTHON) tools/make_lock.py

demo: $(STAMP)
	$(BIN)/mixtape demo --out $(DEMO)

# two test processes (the machine's two cores); a file's tests stay in one process (one Chromium install,
# one build of each session fixture per process)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check mixtape tests bench tools
	$(BIN)/mypy

# the documentation site (docs/, mkdocs.yml) into site/; strict: a broken link or anchor fails
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python bench/augment.py
	$(BIN)/python bench/build.py
	$(BIN)/python bench/loader.py --dataset $(DEMO)/dataset
	$(BIN)/python bench/peers.py
	$(BIN)/python bench/warp.py
	$(BIN)/python bench/plan_scale.py
	$(BIN)/python bench/synth.py

wheel: $(STAMP)
	rm -rf dist && $(BIN)/python -m pip wheel --quiet --no-deps -w dist . 2>&1 | $(PIPQUIET)

# The worker image for Dataflow / Flink (needs a Docker daemon; see deploy/), linted with hadolint first.
image: wheel
	$(BIN)/hadolint deploy/Dockerfile
	docker build -f deploy/Dockerfile -t $(IMAGE) .

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
