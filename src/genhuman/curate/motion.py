"""Motion: DIS optical flow magnitude between consecutive frames (OpenCV), rejecting static
or frozen clips and camera whip-pans or shake."""

from __future__ import annotations

import cv2
import numpy as np

from genhuman.curate.config import MotionConfig
from genhuman.curate.verdict import Verdict

FROZEN_DIFF = 0.25  # mean absolute grey difference (0-255) under which a frame repeats the last


def _grey(frame: np.ndarray, width: int) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    height = max(8, round(grey.shape[0] * width / grey.shape[1]))
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)


def check_motion(frames: list[np.ndarray], config: MotionConfig) -> Verdict:
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    greys = [_grey(f, config.flow_width) for f in frames]
    magnitudes, frozen = [], 0
    for previous, current in zip(greys[:-1], greys[1:]):
        if float(np.abs(current.astype(np.int16) - previous.astype(np.int16)).mean()) < FROZEN_DIFF:
            frozen += 1
            magnitudes.append(0.0)
            continue
        field = flow.calc(previous, current, None)
        magnitudes.append(float(np.linalg.norm(field, axis=2).mean()))
    values = np.asarray(magnitudes) if magnitudes else np.zeros(1)
    mean = float(values.mean())
    frozen_share = frozen / max(1, len(greys) - 1)
    failures = []
    if frozen_share > config.max_frozen_share:
        failures.append(f"frozen ({frozen_share:.0%} of frames repeat)")
    if mean < config.min_mean_flow:
        failures.append(f"static (mean flow {mean:.3f} < {config.min_mean_flow:g} px)")
    elif mean > config.max_mean_flow:
        failures.append(f"camera motion (mean flow {mean:.2f} > {config.max_mean_flow:g} px)")
    return Verdict.check("motion", {"motion_mean_flow": mean, "motion_p95_flow": float(np.percentile(values, 95)),
                                    "motion_frozen_share": frozen_share}, failures)
