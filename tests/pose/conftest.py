"""Small pose sequences built in-process."""

from __future__ import annotations

import numpy as np
import pytest

from genhuman.pose.format import PoseSequence
from genhuman.pose.generate import CANONICAL_BODY, CANONICAL_BODY_SCORE, hand_shape


def make_pose(n: int = 10, seed: int = 0, hand_step: float = 0.004) -> PoseSequence:
    """A smooth random walk of both hands around a canonical body."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.uniform(-hand_step, hand_step, size=(n, 2, 2)), axis=0)
    hands = np.stack([np.stack([np.array([0.64, 0.88]) + walk[i, 0] + hand_shape(0.19, np.pi, False),
                                np.array([0.37, 0.89]) + walk[i, 1] + hand_shape(0.19, 0.0, True)])
                      for i in range(n)])
    face = np.tile(np.linspace([0.4, 0.1], [0.6, 0.3], 68), (n, 1, 1))
    return PoseSequence(body=np.tile(CANONICAL_BODY, (n, 1, 1)), body_score=np.tile(CANONICAL_BODY_SCORE, (n, 1)),
                        hands=hands, hands_score=np.full((n, 2, 21), 0.9), face=face,
                        face_score=np.ones((n, 68)))


@pytest.fixture
def pose() -> PoseSequence:
    return make_pose()
