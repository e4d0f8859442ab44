# tinyprune: `make demo` and `make test` are the two commands; both run `make setup` first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tinyprune-installed
PYTEST_WORKERS ?= 2

.PHONY: setup debs demo test bench clean distclean

setup: debs $(STAMP)

debs:
	@scripts/install-debs.sh

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) scripts/check-python.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,ray]'
	@touch $@

demo: setup
	$(BIN)/python scripts/demo.py

test: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q

bench: setup
	BENCH=$(BENCH) $(BIN)/python bench/run.py

# libFuzzer on the runtime's model reader (clang, ASan + UBSan); writes bench/fuzz_results.json
FUZZ_SECONDS ?= 300
.PHONY: fuzz
fuzz: setup
	$(BIN)/python scripts/fuzz.py --seconds $(FUZZ_SECONDS)

clean:
	rm -rf build demo-out .pytest_cache bench/results.json
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
