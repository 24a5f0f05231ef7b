# audio2vec: `make demo` and `make test` do all the set-up (a .venv with the project installed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

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
