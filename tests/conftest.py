"""Shared fixtures. Tests build tiny random models in-process and run on CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# Two cores: keep torch from oversubscribing when pytest runs alongside other work.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def pytest_configure(config):
    """CI's thread matrix (.ci/run): GENHUMAN_TORCH_THREADS=N runs torch with exactly N
    intra-op threads, also above the core count (torch caps OMP_NUM_THREADS at the cores)."""
    threads = os.environ.get("GENHUMAN_TORCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
        assert torch.get_num_threads() == int(threads)


# Run alone in `make test`, after the rest has run on two workers: they measure time or
# throughput (frame clocks, latency, soak and load figures, signal timing) or drive a browser,
# and a neighbour on the other core would make them flaky.
SERIAL_PATHS = (
    "tests/live/",
    "tests/server/test_browser.py",
    "tests/server/test_soak.py",
    "tests/server/test_process.py",
    "tests/server/test_slow_clients.py",
    "tests/cli/test_signals.py",
)


# Under xdist (`--dist loadgroup`) each file goes to one worker, as with loadfile, except
# these folders, whose session fixtures (a rendered synthetic video set) are built once.
ONE_WORKER_FOLDERS = ("tests/curate/",)


def pytest_collection_modifyitems(config, items):
    distributed = config.pluginmanager.hasplugin("xdist") and config.getoption("dist", "no") != "no"
    for item in items:
        if item.nodeid.startswith(SERIAL_PATHS) or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.serial)
        if distributed:
            path = item.nodeid.split("::")[0]
            group = next((folder for folder in ONE_WORKER_FOLDERS if path.startswith(folder)), path)
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_report_header(config):
    threads = os.environ.get("GENHUMAN_TORCH_THREADS")
    return [f"torch threads: {threads}"] if threads else []


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    return EXAMPLES / "astronaut.png"


@pytest.fixture(scope="session")
def speech_path() -> Path:
    return EXAMPLES / "speech.wav"


@pytest.fixture(scope="session")
def speech_text() -> str:
    return (EXAMPLES / "speech.txt").read_text().strip()
