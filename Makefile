PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-test run test test-browser lint bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# A stamp per extra so that editing pyproject.toml reinstalls.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/uvicorn main:app --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/ruff format --check src tests bench main.py
	$(BIN)/ruff check src tests bench main.py
	$(BIN)/mypy
	$(BIN)/pytest --cov=segmentation --cov-report=term-missing:skip-covered --cov-fail-under=70

# The schemathesis suite of `make test` with ten times the examples per operation.
fuzz: install-test
	FUZZ_SCALE=10 $(BIN)/pytest -p no:cacheprovider tests/e2e/test_openapi_fuzz.py

# The report in a real headless Chromium (Debian's package; installed when missing).
test-browser: install-test
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/pytest -m browser tests/browser

lint: install-test
	$(BIN)/ruff format --check src tests bench main.py
	$(BIN)/ruff check src tests bench main.py

bench: install-test
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.jobs
	$(BIN)/python -m bench.quality
	$(BIN)/python -m bench.algorithms

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
