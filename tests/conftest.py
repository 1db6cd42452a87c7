"""Shared fixtures. Tests build tiny random models in-process and run on CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# Two cores: keep torch from oversubscribing when pytest runs alongside other work.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    return EXAMPLES / "astronaut.png"


@pytest.fixture(scope="session")
def speech_path() -> Path:
    return EXAMPLES / "speech.wav"


@pytest.fixture(scope="session")
def speech_text() -> str:
    return (EXAMPLES / "speech.txt").read_text().strip()
