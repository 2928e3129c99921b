# make run   — set up .venv and run the service on the config in config/monitor.toml
# make test  — set up .venv with the test extras, run the lint and type gate (make lint),
#              then the whole test suite beside a throwaway PostgreSQL cluster when
#              PostgreSQL is installed (.ci/with-pg; its tests skip without it), in
#              four pytest workers (pytest-xdist: most tests wait on servers and clocks)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/monitor: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(BIN)/monitor

# the test extras (pytest, ruff, mypy, Playwright, aiosmtpd, psycopg): make test only
$(VENV)/.test-extras: $(BIN)/monitor
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

.PHONY: setup test-setup run test lint poll clean
setup: $(BIN)/monitor
test-setup: $(VENV)/.test-extras

run: setup
	$(BIN)/monitor --config config/monitor.toml run

poll: setup
	$(BIN)/monitor --config config/monitor.toml poll --all

lint: test-setup
	$(BIN)/ruff check monitor tests bench
	$(BIN)/mypy

test: lint
	bash .ci/with-pg $(BIN)/python -m pytest -q -n 4

clean:
	rm -rf $(VENV) build *.egg-info
