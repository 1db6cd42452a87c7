"""Only GenHuman's own lines reach the terminal's stderr.

Native libraries write their log lines straight to file descriptor 2 from their own
threads, at moments no Python setting controls: MediaPipe and absl ("W0000 ...
inference_feedback_manager.cc"), TFLite ("INFO: Created TensorFlow Lite XNNPACK
delegate"), glog. Timing-based silencing around each graph (face/_mediapipe.py) misses a
line that comes late. So, for the length of a command, Python's ``sys.stderr`` (errors,
logging, warnings, the progress bar) writes to a copy of the terminal's descriptor and
descriptor 2 itself goes to /dev/null. ``--verbose``/GENHUMAN_DEBUG=1 keep everything.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def native_stderr_hidden(enabled: bool = True) -> Iterator[None]:
    """While inside, only writes through ``sys.stderr`` reach stderr."""
    stream = sys.stderr
    try:
        real = enabled and stream is sys.__stderr__ and stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a replaced stderr (a test's capture): leave it alone
        real = False
    if not real:
        yield
        return
    stream.flush()
    saved = os.dup(2)
    python_stderr = io.TextIOWrapper(io.FileIO(saved, "w", closefd=False), encoding=stream.encoding,
                                     errors=stream.errors, line_buffering=True, write_through=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = python_stderr
    try:
        yield
    finally:
        python_stderr.flush()
        sys.stderr = stream
        for handler in logging.getLogger().handlers:  # basicConfig bound them to the copy
            if isinstance(handler, logging.StreamHandler) and handler.stream is python_stderr:
                handler.setStream(stream)
        os.dup2(saved, 2)
        os.close(saved)
