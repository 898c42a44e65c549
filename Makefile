# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench services clean mutation

$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --inexact --all-extras -q
	@touch $@

install: $(STAMP)

demo: install
	$(BIN)/ibot demo

services:
	@bash scripts/services.sh

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install services
	$(BIN)/pytest

test: lint typecheck unit

bench: install
	$(BIN)/python bench/backtest.py
	$(BIN)/python bench/sim.py
	$(BIN)/python bench/live_latency.py
	$(BIN)/python bench/webhook.py

# Mutation testing of the OMS code that guards money (not CI: risk.py + states.py ~7 min on 2 cores, all four
# modules about an hour; MUTATION_MODULES="risk.py states.py" narrows it; survivors explained in
# tests/oms/MUTANTS.md). Runs in a copy under out/ so the work tree stays clean; the scope (which functions
# of manager.py and records.py) and the per-module scores: scripts/mutation_report.py.
MUTATION_DIR := out/mutation
MUTATION_CHILDREN ?= 2
MUTATION_MODULES ?= risk.py states.py manager.py records.py
# The tree mutated: the working tree, or a commit (MUTATION_FROM=HEAD) when work in progress breaks tests/oms.
MUTATION_FROM ?= worktree

mutation: install
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --inexact --all-extras --group mutation -q
	@rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)
	@if [ "$(MUTATION_FROM)" = worktree ]; then cp -a src tests pyproject.toml $(MUTATION_DIR)/; \
	else git archive $(MUTATION_FROM) src tests pyproject.toml | tar -x -C $(MUTATION_DIR); fi
	set -f; cd $(MUTATION_DIR) && $(abspath $(BIN))/mutmut run --max-children $(MUTATION_CHILDREN) \
		$$($(abspath $(BIN))/python $(abspath scripts/mutation_report.py) --scope --modules "$(MUTATION_MODULES)")
	$(BIN)/python scripts/mutation_report.py $(MUTATION_DIR) --modules "$(MUTATION_MODULES)"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
