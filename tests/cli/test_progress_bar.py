"""`genhuman animate` draws its tqdm bar on a terminal: run it under a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time

import pytest

from genhuman.media import SAMPLE_RATE, load_audio, save_wav

TIMEOUT = 180  # seconds; the 1.5 s job itself takes a few


def run_in_pty(argv: list[str], size: tuple[int, int] | None) -> tuple[int, str]:
    """Run ``argv`` with stdin/stdout/stderr on a new pty of ``size`` (rows, columns), or
    left unsized (0 x 0, as ``script`` or a program's own pty gives); returns (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stderr is the pty
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    if size is not None:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    out = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not data:
                break
            out += data
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, speech_path):
    path = tmp_path_factory.mktemp("pty") / "short.wav"
    save_wav(path, load_audio(speech_path)[: int(1.5 * SAMPLE_RATE)])
    return path


@pytest.mark.parametrize("size", [(24, 100), None], ids=["sized", "unsized"])
def test_animate_shows_a_progress_bar_on_a_terminal(tmp_path, portrait_path, short_speech, size):
    output = tmp_path / "out.mp4"
    code, text = run_in_pty([sys.executable, "-m", "genhuman", "animate", str(portrait_path), str(short_speech),
                             "-o", str(output)], size)
    assert code == 0, text
    assert output.is_file()
    assert "animate (lite)" in text, text
    percentages = [int(p) for p in re.findall(r"animate \(lite\):\s+(\d+)%", text)]
    assert percentages and percentages[-1] == 100, text
    assert len(set(percentages)) > 2, text  # redrawn as the job goes, not just at the end
    assert "wrote " in text


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path, portrait_path, short_speech):
    import subprocess

    output = tmp_path / "out.mp4"
    done = subprocess.run([sys.executable, "-m", "genhuman", "animate", str(portrait_path), str(short_speech),
                           "-o", str(output)], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert "animate (lite)" not in done.stderr and "%|" not in done.stderr
