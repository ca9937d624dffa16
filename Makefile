# The two set-up commands in the README: `make demo` and `make test`.
# Each creates .venv and installs what it needs; nothing is assumed installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench-detect clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/burnguard demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest streams detectors guardrails sinks schemas tests

bench-detect: $(VENV)/.installed
	$(BIN)/python -m bench.detect

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache burnguard.db
