"""SIGTERM and SIGHUP clean up like Ctrl-C: no hidden .partial.mp4, exit 128 + signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from genhuman.cli.signals import Terminated, signals_as_interrupts
from genhuman.media import SAMPLE_RATE, load_audio, save_wav

TIMEOUT = 120


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory, speech_path):
    path = tmp_path_factory.mktemp("signals") / "long.wav"
    save_wav(path, np.tile(load_audio(speech_path), 5)[:30 * SAMPLE_RATE])  # frames are written for seconds
    return path


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signal_mid_job_leaves_no_partial_file(tmp_path, portrait_path, long_speech, signum, code):
    folder = tmp_path / "out"
    folder.mkdir()
    job = subprocess.Popen([sys.executable, "-m", "genhuman", "animate", str(portrait_path), str(long_speech),
                            "-o", str(folder / "talk.mp4"), "--max-size", "64"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + TIMEOUT
        while not any(folder.glob(".*.partial.mp4")):  # frames are being written
            assert job.poll() is None, job.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        job.send_signal(signum)
        out, err = job.communicate(timeout=TIMEOUT)
    finally:
        job.kill()
    assert job.returncode == code, (err, out, os.listdir(folder))
    name = signal.Signals(signum).name
    assert err == ("genhuman: interrupted\n" if signum == signal.SIGINT else f"genhuman: terminated ({name})\n")
    assert out == ""
    assert sorted(os.listdir(folder)) == []  # neither the partial file nor a truncated output


def test_handlers_raise_and_are_restored():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    with pytest.raises(Terminated) as caught:
        with signals_as_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this
    assert caught.value.signum == signal.SIGTERM and caught.value.name == "SIGTERM"
    assert isinstance(caught.value, KeyboardInterrupt)  # so every Ctrl-C clean-up runs
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


def test_an_ignored_sighup_stays_ignored():
    """Under nohup SIGHUP is ignored on purpose; the CLI keeps it so."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with signals_as_interrupts():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_interrupt_while_the_writer_opens_leaves_no_partial_file(tmp_path, monkeypatch):
    """The signal can land between creating the hidden file and opening the container."""
    import av

    from genhuman.media import VideoWriter

    def interrupted(*args, **kwargs):
        raise Terminated(signal.SIGTERM)

    monkeypatch.setattr(av, "open", interrupted)
    with pytest.raises(Terminated):
        with VideoWriter(tmp_path / "out.mp4", fps=25):
            pass
    assert os.listdir(tmp_path) == []
