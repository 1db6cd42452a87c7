"""Shared fixtures: the example portrait, its face mesh and a renderer (built once)."""

from __future__ import annotations

import numpy as np
import pytest

from genhuman.engines.lite.render import Renderer
from genhuman.face import face_landmarks
from genhuman.media import load_image


@pytest.fixture(scope="session")
def portrait(portrait_path) -> np.ndarray:
    return load_image(portrait_path)


@pytest.fixture(scope="session")
def landmarks(portrait) -> np.ndarray:
    return face_landmarks(portrait).landmarks.astype(np.float64)


@pytest.fixture(scope="session")
def renderer(portrait, landmarks) -> Renderer:
    return Renderer(portrait, landmarks)
