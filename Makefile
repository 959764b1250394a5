# The two commands of the README: `make run` and `make test`. Both create .venv and install into it,
# each only the extras it needs (pyproject.toml): run = server,local; test = server,local,test,bench
# (the suite runs the bench's smoke test, so test and bench share one install).
#   make run ARGS="--https-port 9443"     flags for `mcp-pa up`
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
# One stamp per set of extras: switching from run to test installs what test adds, and back is free.
RUN_STAMP := $(VENV)/.installed-server-local
TEST_STAMP := $(VENV)/.installed-server-local-test-bench

.PHONY: run test lint bench install system-tools clean

$(RUN_STAMP): pyproject.toml
	PYTHON=$(PYTHON) bash scripts/install.sh $(VENV) server,local
	touch $@

# test ⊇ run: installing the test extras satisfies run too.
$(TEST_STAMP): pyproject.toml
	PYTHON=$(PYTHON) bash scripts/install.sh $(VENV) server,local,test,bench
	touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)

system-tools:
	bash scripts/system-tools.sh

run: $(RUN_STAMP)
	$(BIN)/mcp-pa up $(ARGS)

# The gates: ruff, mypy and the import-linter layer contracts, all configured in pyproject.toml.
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two workers (one per core), each taking whole modules so module fixtures start once: most of the
# suite waits on real processes, so this cuts wall time by about a third on two cores.
test: lint system-tools
	$(BIN)/python -m pytest -q -n auto --dist loadfile

bench: $(TEST_STAMP) system-tools
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mcp-pa .pytest_cache .mypy_cache .import_linter_cache
