# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench services clean

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

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
