# Minsheng — the two commands a newcomer needs are `make up` and `make test`.
# Everything they need is installed by the targets themselves (a venv from PyPI, redis-server from Debian).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8000

.PHONY: up test bench lint install redis-server chromium npm-deps schema clean help

help:
	@echo "make up     run gateway + sandbox channels + dashboard on http://127.0.0.1:$(PORT) (embedded store)"
	@echo "make test   run the test suite against a throwaway real redis-server"
	@echo "make bench  run the benchmarks, printing one JSON object of figures"
	@echo "make lint   ruff + mypy (strict on the packages)"

EXAMPLE := examples/minsheng-connector-example

$(STAMP): pyproject.toml $(EXAMPLE)/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	# the example connector package of docs/connectors.md: the test suite runs the conformance kit on it
	$(PY) -m pip install --quiet --no-deps -e $(EXAMPLE)
	@touch $(STAMP)

install: $(STAMP)

# Debian's redis-server for the tests (the gateway itself needs no server: it embeds a store by default).
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server not found: installing Debian's package"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else echo "cannot install redis-server (not root, no sudo): install it, or set MINSHENG_TEST_REDIS_URL"; exit 1; fi; }
	@redis-server --version

# Debian's chromium (and CJK fonts, so screenshots show Chinese) for the dashboard's browser tests;
# Playwright drives it through executable_path and never downloads browsers of its own.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium not found: installing Debian's package"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null; \
	  else echo "cannot install chromium (not root, no sudo): install it, or set MINSHENG_TEST_CHROMIUM"; exit 1; fi; }
	@chromium --version 2>/dev/null || true

up: $(STAMP)
	PORT=$(PORT) $(VENV)/bin/minsheng up

# The ecosystem's conformance suites (graphql-http audits, Apollo composition) at the versions pinned in
# tests/npm/package-lock.json, from the npm registry (the tests install them too when run alone).
npm-deps: tests/npm/node_modules/.package-lock.json

tests/npm/node_modules/.package-lock.json: tests/npm/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node >= 18 (Debian: apt-get install nodejs npm)"; exit 1; }
	cd tests/npm && npm ci --no-audit --no-fund --loglevel=error

# rewrite schema.graphql, the committed schema snapshot (tests/test_schema_snapshot.py checks breaks against it)
schema: $(STAMP)
	$(PY) -m tests.test_schema_snapshot

test: $(STAMP) redis-server chromium npm-deps
	$(VENV)/bin/pytest

bench: $(STAMP) redis-server
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var test-artifacts tests/npm/node_modules
