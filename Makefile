# make run: one cycle with ./settings.toml (or $DIGEST_CONFIG); make test: lint (ruff, mypy, the
# import layers of pyproject.toml) + every test; make quick: the tests not marked slow.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := digest tests $(wildcard bench)

.PHONY: install run test quick lint format bench screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/digest once

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/lint-imports
	$(BIN)/mypy

# Three workers on two cores: a third of the suite waits on servers, browsers and processes
# (2 cores ran at 58 % with two workers); work stealing keeps the long tests from piling up.
# Python's bytecode caches stay on even where the environment turns them off
# (PYTHONDONTWRITEBYTECODE): without them each worker rewrites every test module's asserts
# again (about 2.5 s of CPU each) and every `digest` process the tests start compiles the
# package again.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 3 --dist worksteal

test: lint
	$(PYTEST)

quick: $(STAMP)
	$(PYTEST) -m "not slow"

format: $(STAMP)
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

bench: $(STAMP)
	$(BIN)/python bench/bench.py

# The README's pictures, as the browser tests took them (run make test first).
screenshots:
	cp tests/artifacts/email-375-light.png tests/artifacts/email-375-dark.png \
		tests/artifacts/email-1024-light.png tests/artifacts/reading-day-375.png \
		tests/artifacts/reading-topic-1280.png tests/artifacts/admin-375.png \
		tests/artifacts/admin-1280.png docs/

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis .import_linter_cache build dist *.egg-info
