"""Shot cuts with PySceneDetect's adaptive detector, fed frame by frame (no second decoder)."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from genhuman.curate.config import ShotConfig


def detect_cuts(frames: Iterable[tuple[int, np.ndarray]], config: ShotConfig) -> list[int]:
    """Index of the first frame of every new shot (frame 0 is not a cut)."""
    from scenedetect.detectors import AdaptiveDetector

    detector = AdaptiveDetector(adaptive_threshold=config.adaptive_threshold, min_scene_len=config.min_scene_len,
                                window_width=config.window_width, min_content_val=config.min_content_val)
    cuts: list[int] = []
    last = 0
    for index, frame in frames:
        # PySceneDetect works on OpenCV's BGR order
        cuts.extend(detector.process_frame(index, np.ascontiguousarray(frame[..., ::-1])))
        last = index
    cuts.extend(detector.post_process(last))
    return sorted(c for c in set(cuts) if c > 0)


def shots_from_cuts(cuts: list[int], frames: int) -> list[tuple[int, int]]:
    """[start, stop) frame ranges between cuts."""
    edges = [0, *[c for c in cuts if 0 < c < frames], frames]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
