# `make demo` and `make test` set everything up on a fresh machine (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.aeradio-installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-venv.sh scripts/install-soapysdr.sh scripts/install-gnuradio.sh \
		scripts/install-chromium.sh
	VENV=$(VENV) bash scripts/setup-venv.sh
	touch $@

demo: $(STAMP)
	$(VENV)/bin/aeradio demo

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check aeradio tests benchmarks

bench: $(STAMP)
	$(VENV)/bin/aeradio bench --json bench.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
