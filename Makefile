# ipcredit — the two set-up commands are `make demo` and `make test`; both create the environment.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= var/demo
DEMO_ENTITIES ?= 20000
DEMO_AS_OF ?= 2025-12-31
HOST ?= 127.0.0.1
PORT ?= 8000
export MPLBACKEND := Agg

.PHONY: env demo demo-data test test-fast bench bench-features bench-model bench-service bench-scale bench-gain bench-relations bench-pages screenshots lint format clean

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,spark]"
	touch $(STAMP)

demo-data: env
	$(BIN)/ipcredit demo-data --out $(DEMO_DIR)/data --entities $(DEMO_ENTITIES) --seed 7
	$(BIN)/ipcredit validate --data $(DEMO_DIR)/data

demo: demo-data
	bash scripts/demo.sh "$(DEMO_DIR)" "$(DEMO_AS_OF)" "$(HOST)" "$(PORT)"

test: env
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

# The pages' screenshots in docs/screenshots, retaken by the browser tests (a plain test run keeps its own
# in var/screenshots, so it leaves the checkout clean).
screenshots: env
	IPCREDIT_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/ui

test-fast: env
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

bench: bench-features bench-model bench-service

bench-features: env
	$(BIN)/python benchmarks/bench_features.py

bench-model: env
	$(BIN)/python benchmarks/bench_model.py

# Out-of-time AUC against a plain LightGBM on simple counts, on fresh dense, sparse and credit-platform worlds (issue 14).
# And how much of a lead the record allows at all: a model on each entity's whole yearly history.
bench-gain: env
	$(BIN)/python benchmarks/bench_gain.py
	$(BIN)/python benchmarks/bench_ceiling.py

# 1M, 2M and 5M entities, DuckDB and Spark (Java 17): an hour or more on 2 cores; see docs/scale.md.
bench-scale: env
	$(BIN)/python benchmarks/bench_scale.py

# Relationship features: the out-of-time gain on fresh worlds, then their cost at 1M entities with 3M links.
bench-relations: env
	$(BIN)/python benchmarks/bench_relations.py
	$(BIN)/python benchmarks/bench_relations_cost.py

# Server time of every page on the demo world (20,000 entities; builds it first, a few minutes).
bench-pages: env
	$(BIN)/python benchmarks/bench_pages.py

bench-service: env
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python benchmarks/bench_service.py

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: env
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var build *.egg-info .pytest_cache .ruff_cache
