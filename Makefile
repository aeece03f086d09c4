# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export CHRONOREC_DATA ?= $(abspath ../shared/data)

.PHONY: install demo test test-slow browser lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,export]'
	$(BIN)/python -m compileall -q src  # byte-code even where PYTHONDONTWRITEBYTECODE is set
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/chronorec demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the slow tests include the report in headless Chromium (Debian's package; needs root for apt-get)
browser:
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }

test-slow: $(STAMP) browser
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build src/*.egg-info
