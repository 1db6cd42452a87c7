"""Luminance: the segment's mean luma (BT.601, 0-255) inside OpenHumanVid's [10, 210]."""

from __future__ import annotations

import numpy as np

from genhuman.curate.config import LuminanceConfig
from genhuman.curate.verdict import Verdict

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def mean_luma(frame: np.ndarray) -> float:
    return float(frame.reshape(-1, 3).astype(np.float32).mean(axis=0) @ LUMA)


def check_luminance(frames: list[np.ndarray], config: LuminanceConfig) -> Verdict:
    values = np.array([mean_luma(f) for f in frames])
    mean = float(values.mean())
    failures = []
    if mean < config.min_mean:
        failures.append(f"too dark (mean luma {mean:.1f} < {config.min_mean:g})")
    elif mean > config.max_mean:
        failures.append(f"blown out (mean luma {mean:.1f} > {config.max_mean:g})")
    return Verdict.check("luminance", {"luma_mean": mean, "luma_min": float(values.min()),
                                       "luma_max": float(values.max())}, failures)
