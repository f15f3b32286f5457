# The README's quick start: `make demo` and `make test`. Each builds its own virtualenv in .venv
# (after checking the system libraries WeasyPrint needs) and reuses it while setup.cfg is unchanged.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean constraints

$(STAMP): setup.cfg pyproject.toml
	@PYTHON=$(PYTHON) scripts/ensure-system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The demo collects the scripted quarter weekly (14 observations at simulated dates) and reports
# over the whole period; `make demo SINGLE=1` runs the single-collection demo instead.
demo: $(STAMP)  ## run the whole audit on the built-in demo workspace (no account needed)
ifeq ($(SINGLE),1)
	$(BIN)/auditor demo --single
else
	$(BIN)/auditor demo
endif

# The evidence store tests also run against PostgreSQL: a throwaway server is started for them
# unless AUDITOR_TEST_POSTGRES_URL names one (as .ci/run does); without one they are skipped.
test: $(STAMP)  ## lint and run the test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	scripts/postgres-for-tests run $(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## print the benchmark figures (collection, controls, rendering)
	$(BIN)/python bench/bench_client.py
	$(BIN)/python bench/bench_collect.py
	$(BIN)/python bench/bench_controls.py
	$(BIN)/python bench/bench_render.py
	$(BIN)/python bench/bench_requests.py
	$(BIN)/python bench/bench_period.py
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_reperform.py
	$(BIN)/python bench/bench_datacenter.py
	$(BIN)/python bench/bench_long_strings.py
	$(BIN)/python bench/bench_serve.py
	$(BIN)/python bench/bench_incremental.py

# The pinned runtime dependencies the Dockerfile installs with (constraints.txt): a fresh
# virtualenv, the package alone, pip freeze.
constraints:
	rm -rf build/constraints-venv
	$(PYTHON) -m venv build/constraints-venv
	build/constraints-venv/bin/python -m pip install --quiet --upgrade pip
	build/constraints-venv/bin/python -m pip install --quiet .
	sed -n '1,/^$$/{/^#/p}' constraints.txt > build/constraints.header
	{ cat build/constraints.header; build/constraints-venv/bin/python -m pip freeze --exclude bitbucket-auditor; } > constraints.txt
	rm -rf build/constraints-venv build/constraints.header

clean:
	rm -rf $(VENV) build *.egg-info
