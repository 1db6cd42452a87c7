"""A failing command prints exactly its one line on stderr, whatever native libraries log."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PIL import Image

TIMEOUT = 120


@pytest.fixture
def blank(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("RGB", (256, 256), (200, 180, 160)).save(path)
    return path


def genhuman(*argv, env=None, code=None):
    command = [sys.executable, "-m", "genhuman", *map(str, argv)] if code is None else \
        [sys.executable, "-c", code, *map(str, argv)]
    environment = {k: v for k, v in os.environ.items() if k != "GENHUMAN_DEBUG"}
    return subprocess.run(command, capture_output=True, timeout=TIMEOUT, env={**environment, **(env or {})})


def test_no_face_is_one_line(tmp_path, blank, speech_path):
    done = genhuman("animate", blank, speech_path, "-o", tmp_path / "out.mp4")
    assert done.returncode == 2
    assert done.stderr == b"genhuman: error: no face found in the image\n"
    assert not (tmp_path / "out.mp4").exists()


# A command that logs from native code (as MediaPipe, TFLite and absl do, from their own
# threads and at their own time) and through Python logging, then fails.
NOISY = """
import logging, os, sys
import genhuman.cli.animate as animate
from genhuman.cli import main
from genhuman.errors import InputError

def run(args):
    os.write(2, b"W0000 00:00:1.0 1 inference_feedback_manager.cc:114] Feedback manager\\n")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    logging.getLogger("genhuman.test").warning("a warning of ours")
    raise InputError("no face found in the image")

animate.run = run
sys.exit(main(sys.argv[1:] + ["animate", "a.png", "b.wav", "-o", "x.mp4"]))
"""


def test_native_log_lines_stay_off_stderr_python_lines_stay_on():
    done = genhuman(code=NOISY)
    assert done.returncode == 2
    assert done.stderr == b"WARNING genhuman.test: a warning of ours\ngenhuman: error: no face found in the image\n"


@pytest.mark.parametrize("how", ["--verbose", "GENHUMAN_DEBUG"])
def test_debugging_keeps_native_lines(how):
    done = genhuman(*(["--verbose"] if how == "--verbose" else []),
                    env={"GENHUMAN_DEBUG": "1"} if how == "GENHUMAN_DEBUG" else None, code=NOISY)
    assert done.returncode == 2
    assert b"inference_feedback_manager.cc" in done.stderr and b"XNNPACK" in done.stderr
    assert done.stderr.endswith(b"genhuman: error: no face found in the image\n")
