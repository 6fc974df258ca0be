# Keyfob's front door. `make run` starts the portal, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests drive as independent, real clients and servers.
TEST_TOOLS := gettext oathtool zbar-tools chromium openssh-server libpam-google-authenticator libpam-python python3 python3-venv
export KEYFOB_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test lint bench venv tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Installs the missing test tools when we are root and have apt-get; otherwise the
# tests that need them are skipped and say why.
tools:
	@missing=""; for p in $(TEST_TOOLS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null \
	  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; }; \
	else echo "not installed (their tests will be skipped):$$missing"; fi

test: venv tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -n "$$KEYFOB_TEST_DATABASE_URL" ]; then \
	  echo "== again on PostgreSQL ($$KEYFOB_TEST_DATABASE_URL) =="; \
	  KEYFOB_DATABASE_URL="$$KEYFOB_TEST_DATABASE_URL" $(BIN)/python -m pytest -m "postgres or not browser" $(PYTEST_ARGS); \
	fi

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src/keyfob
	$(BIN)/lint-imports

# The side-by-side measurement beside privacyIDEA (issue 23), when ../shared/perf/ has
# installed privacyIDEA; skipped, saying so, when it has not.
PERF_RUN ?= $(firstword $(wildcard ../shared/perf/run ../../shared/perf/run))
PERF_PI := /tmp/perf-anchors/venv-pi/bin/pi-manage

bench: venv
	$(BIN)/python bench/otp_verify.py
	$(BIN)/python bench/ssh_verify.py
	@if [ -n "$(PERF_RUN)" ] && [ -x $(PERF_PI) ]; then \
	  echo "== beside privacyIDEA ($(PERF_RUN)) =="; $(PERF_RUN) . --seconds 3 --accounts 20000; \
	else echo "(privacyIDEA not installed: run ../shared/perf/run once for the side-by-side ratio)"; fi

run: venv
	$(BIN)/keyfob migrate --no-input
	$(BIN)/keyfob demo-account
	$(BIN)/keyfob serve --host 127.0.0.1 --port 8000

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
