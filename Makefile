# OrderHub — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test test-fast lint bench install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create the virtualenv and install OrderHub with its dev tools

run: $(STAMP)  ## set up and run OrderHub on embedded SQLite with demo data (http://127.0.0.1:8000)
	$(BIN)/orderhub demo

lint: $(STAMP)  ## ruff + mypy (strict)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: lint  ## lint, then the whole suite on SQLite and PostgreSQL
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-fast: $(STAMP)  ## unit tests only (no database)
	$(BIN)/python -m pytest tests/unit tests/test_layering.py -q

bench: $(STAMP)  ## print throughput figures (SQLite and PostgreSQL)
	$(BIN)/python benchmarks/bench_orders.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_reserve.py
	$(BIN)/python benchmarks/bench_tracking.py

clean:
	rm -rf $(VENV) .orderhub .pytest_cache .mypy_cache .ruff_cache
