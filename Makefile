# audio2vec: `make demo` and `make test` do all the set-up (a .venv with the project installed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

TEACHER_VENV := .teacher-venv
TEACHER_STAMP := $(TEACHER_VENV)/.installed

.PHONY: install test-packages data-packages demo test bench clean teacher

install: $(STAMP)

# Debian packages, installed as root with apt-get only when one of them is missing (dpkg-query);
# no test or benchmark installs anything by itself. $(call apt_need,PACKAGES)
define apt_need
@test "$$(dpkg-query -W -f='$${Status}\n' $(1) 2>/dev/null | grep -c ' installed$$')" = "$(words $(1))" || { \
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(1) || \
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(1); }; }
endef

# What the test suite runs beside Python: Chromium and its driver (the page's browser test,
# tests/test_browser.py), fluidsynth and two soundfonts (tests/test_rendering.py), PostgreSQL's
# server binaries (tests/test_postgres.py and tests/test_filters.py start their own server with
# initdb/pg_ctl in a temporary folder; no service is started or enabled).
TEST_PACKAGES := chromium chromium-driver fluidsynth csound-soundfont musescore-general-soundfont-small postgresql

test-packages:
	$(call apt_need,$(TEST_PACKAGES))

# Every Debian package that data/ (training renders) and benchmarks/ read: soundfonts and
# synthesisers, sound collections, speech, codecs (the packages their require_debian_package calls
# and Synth entries name; tests/test_rendering.py checks this list against them). A benchmark that
# finds one missing stops and names the package and this target.
DATA_PACKAGES := csound-soundfont espeak-ng ffmpeg fluid-soundfont-gm fluid-soundfont-gs fluidsynth \
  freepats lmms-common musescore-general-soundfont-small openttd-opensfx opl3-soundfont \
  sound-theme-freedesktop sox supertuxkart-data timgm6mb-soundfont timidity

data-packages:
	$(call apt_need,$(DATA_PACKAGES))

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,train,dask,parquet]'
	touch $(STAMP)

demo: install
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python data/demo.py

test: install test-packages
	$(BIN)/python -m pytest

bench: install data-packages
	$(BIN)/python benchmarks/excerpt_id.py

# The distillation teacher (aisfx, Ma & Lerch, ISMIR 2022, CC BY 4.0: see NOTICE) in its own
# environment: torch 2.13.0 (the CPU wheel), aisfx without its old pins. Training only; the engine,
# `make install` and `make test` never install or import torch. Then:
#   $(TEACHER_VENV)/bin/python teacher/aisfx_teacher.py AUDIO... --out TEACHER_DIR
#   audio2vec train AUDIO... --objective distill --teacher-vectors TEACHER_DIR --out MODEL
teacher: $(TEACHER_STAMP)

$(TEACHER_STAMP):
	test -x $(TEACHER_VENV)/bin/python || $(PYTHON) -m venv $(TEACHER_VENV)
	$(TEACHER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TEACHER_VENV)/bin/python -m pip install --quiet torch==2.13.0 numpy librosa soundfile
	$(TEACHER_VENV)/bin/python -m pip install --quiet --no-deps aisfx==0.1.2
	touch $(TEACHER_STAMP)

clean:
	rm -rf data/demo data/index .pytest_cache
