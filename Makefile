# audio2vec: `make demo` and `make test` do all the set-up (a .venv with the project installed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser demo test bench clean

install: $(STAMP) browser

# Debian's Chromium and its chromedriver, for the page's browser test (tests/test_browser.py);
# installed once, as root (no sudo), when missing. Nothing is downloaded by the tests themselves.
browser:
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || { \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; }; }

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	touch $(STAMP)

demo: install
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python data/demo.py

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/excerpt_id.py

clean:
	rm -rf data/demo data/index .pytest_cache
