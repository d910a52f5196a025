PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-test java run test test-browser lint bench bench-spark fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# A stamp per extra so that editing pyproject.toml reinstalls.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench,spark]'
	touch $@

# pyspark needs a Java runtime: Debian's, installed when `java` is missing
java:
	command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless)

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

$(VENV)/.installed-browser: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench,browser]'
	touch $@

run: install
	$(BIN)/uvicorn main:app --host $(HOST) --port $(PORT)

test: install-test java
	$(BIN)/ruff format --check src tests bench main.py
	$(BIN)/ruff check src tests bench main.py
	$(BIN)/mypy
	$(BIN)/pytest --cov=segmentation --cov-report=term-missing:skip-covered --cov-fail-under=70

# The schemathesis suite of `make test` with ten times the examples per operation.
fuzz: install-test
	FUZZ_SCALE=10 $(BIN)/pytest -p no:cacheprovider tests/e2e/test_openapi_fuzz.py

# The report and the dashboard in a real headless Chromium (Debian's package; installed when
# missing), driven by Playwright for Python, which downloads no browser of its own.
test-browser: $(VENV)/.installed-browser
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/pytest -m browser tests/browser

lint: install-test
	$(BIN)/ruff format --check src tests bench main.py
	$(BIN)/ruff check src tests bench main.py

bench: install-test
	$(BIN)/python -m bench.floor
	$(BIN)/python -m bench.profile
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.jobs
	$(BIN)/python -m bench.quality
	$(BIN)/python -m bench.algorithms

# The Spark engine at local[2] on 1M, 3M and 10M generated customers (BENCH_SPARK_SIZES).
bench-spark: install-test java
	$(BIN)/python -m bench.spark

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
