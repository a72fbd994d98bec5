# pianoforge — two commands: `make demo` and `make test`. Both install everything first (idempotent).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
APT_STAMP := $(VENV)/.apt-stamp
DEMO_OUT ?= demo_out

.PHONY: install system-deps browser-deps demo test lint bench clean help

help:
	@echo "make demo   install everything and run the main job on the embedded default"
	@echo "make test   install everything and run the test suite"
	@echo "make bench  run the benchmarks and write bench/results.md"
	@echo "make lint   ruff check"

# System packages: FluidSynth and a General MIDI soundfont (skipped when already present).
system-deps:
	@if ! command -v fluidsynth >/dev/null || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then \
	  echo "[install] apt: fluidsynth fluid-soundfont-gm"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends fluidsynth fluid-soundfont-gm >/dev/null \
	    || { echo "ERROR: apt-get install fluidsynth fluid-soundfont-gm failed" >&2; exit 1; }; \
	fi

# A real browser for tests/test_web_browser.py (`make test` only): Debian's Chromium and its chromedriver. If apt
# cannot install them the browser test is skipped and says why; nothing else needs them.
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "[install] apt: chromium chromium-driver (for the browser test)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
	    || echo "WARNING: apt-get install chromium chromium-driver failed; the browser test will be skipped" >&2; \
	fi

$(VPY):
	$(PY) -m venv $(VENV) || { echo "ERROR: could not create $(VENV) (need python3-venv)" >&2; exit 1; }

# torch is pinned in the same pip step as everything else so nothing drags in a CUDA build.
$(STAMP): pyproject.toml | $(VPY)
	@echo "[install] python packages into $(VENV) (torch==2.13.0 CPU)"
	$(VPY) -m pip install -q --upgrade "pip>=23" >/dev/null
	$(VPY) -m pip install -q "torch==2.13.0" "setuptools<81" -e ".[eval,dev,web]" \
	  || { echo "ERROR: pip install failed (see above)" >&2; exit 1; }
	$(VPY) -m pip install -q --no-deps "basic-pitch==0.4.0" \
	  || { echo "ERROR: pip install basic-pitch failed" >&2; exit 1; }
	@touch $(STAMP)

install: system-deps $(STAMP)

demo: install
	$(VENV)/bin/pianoforge demo --out $(DEMO_OUT) --force

test: install browser-deps
	$(VPY) -m pytest -q -n 2 --durations=15

lint: install
	$(VENV)/bin/ruff check src tests bench

bench: install
	$(VPY) bench/run_all.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build *.egg-info
