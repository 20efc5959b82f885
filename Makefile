# Two entry points (see README): `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := .demo-data
RK     := $(BIN)/ragkeep --data-dir $(DEMO)

.PHONY: demo test lint typecheck unit smoke slow bench perf-check perf-check-ci perf-baseline clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	# An editable install is not byte-compiled; do it as pip does for a regular install.
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

## Index the bundled sample documents, then search and ask them.
demo: $(STAMP)
	rm -rf $(DEMO)
	$(RK) add examples/docs
	$(RK) search "how often should tomatoes be watered" -k 3
	$(RK) ask "How long does the UPS keep the server running during a power cut?"

## Lint, type-check and run the whole default test suite.
test: lint typecheck smoke perf-check-ci unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

# The cache code must stay 100% line- and branch-covered (the report is in the output).
# The web page's browser tests need Chromium: installed if missing, and required (no skip).
unit: $(STAMP)
	scripts/ensure_chromium.sh
	TESTS_REQUIRE_BROWSER=1 TESTS_REQUIRE_POSTGRES=1 $(BIN)/pytest --cov=ragkeep.cache --cov-branch --cov-report=term-missing --cov-fail-under=100

# A plain `pip install .` (no extras) into a fresh venv runs every everyday command.
smoke:
	PYTHON=$(PYTHON) scripts/smoke_plain_install.sh

## Long stress / soak / full-size runs.
slow: $(STAMP)
	$(BIN)/pytest -m slow

## Benchmarks: print figures and write JSON to benchmarks/results/.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

## Performance gate: the working tree against benchmarks/baseline.toml's commit, A/B on this
## machine (docs/benchmarks.md, "The performance gate"). Exit 1 on a credible regression.
perf-check: $(STAMP)
	$(BIN)/python benchmarks/perf_gate.py --preset full

# Small sizes: a few minutes, the first run also builds the two venvs.
perf-check-ci: $(STAMP)
	$(BIN)/python benchmarks/perf_gate.py --preset ci

# Make REV (default HEAD) the gate's baseline; commit benchmarks/baseline.toml afterwards.
perf-baseline: $(STAMP)
	$(BIN)/python benchmarks/perf_gate.py --set-baseline $(or $(REV),HEAD)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
