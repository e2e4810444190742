# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine:
# they create .venv, install raynas (and a CPU torch when no torch is installed), then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.raynas-installed

.PHONY: install demo test test-fast lint bench clean-venv

$(STAMP): pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install.sh
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/raynas run examples/nb201_optuna.yaml --storage-path results --name demo-$$(date +%Y%m%d-%H%M%S) -q

# The whole suite (CI runs this). test-fast: everything not marked slow (real Tuner runs,
# clusters, the install), for a developer's edit-test loop.
test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/nb201_searchers.py

clean-venv:
	rm -rf $(VENV)
