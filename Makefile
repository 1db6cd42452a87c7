# The two set-up commands: `make demo` and `make test`. Each creates or refreshes .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PIP    := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: demo test test-fast test-browser browser bench clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps mediapipe==0.10.21
	$(PIP) --no-deps -e .
	touch $@

demo: $(STAMP)
	$(VENV)/bin/genhuman animate examples/astronaut.png examples/speech.wav \
	    --text-file examples/speech.txt -o out/demo.mp4
	$(VENV)/bin/genhuman eval lipsync out/demo.mp4

test: $(STAMP) browser
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

# --- server engineer: headless Chromium (Debian packages) for the browser test ---
browser:
	@sh scripts/install_browser.sh

test-browser: $(STAMP) browser
	$(PY) -m pytest -q -m browser
# --- end server engineer ---

bench: $(STAMP)
	$(PY) benchmarks/bench_lite.py

clean:
	rm -rf $(VENV) out .pytest_cache
