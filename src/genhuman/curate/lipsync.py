"""Lip sync: GenHuman's own opening-vs-loudness measure (genhuman.eval.lipsync) on the
segment, with its best lag searched over +-``max_lag`` frames (default 12; SyncNet: 15). A positive lag means the
mouth moves after the sound; the export delays the audio by that many frames."""

from __future__ import annotations

from typing import Optional

import numpy as np

from genhuman.curate.config import LipSyncConfig
from genhuman.curate.verdict import Verdict
from genhuman.eval.lipsync import LOUDNESS_RANGE_DB, lagged_correlations, lipsync_stats
from genhuman.eval.tracks import loudness_track, mouth_opening
from genhuman.face import Face


def opening_track(faces: list[Optional[Face]]) -> np.ndarray:
    return np.array([np.nan if f is None else mouth_opening(f.landmarks) for f in faces], np.float64)


def check_lipsync(faces: list[Optional[Face]], audio: np.ndarray, fps: float, config: LipSyncConfig) -> Verdict:
    opening = opening_track(faces)
    loudness = loudness_track(audio, fps, len(opening))
    nan = float("nan")
    scores = {"lipsync_correlation": nan, "lipsync_best_lag": 0.0, "lipsync_best_correlation": nan,
              "lipsync_closed_in_silence": nan}
    if np.isfinite(opening).sum() < 3 or np.nanstd(opening) == 0:
        return Verdict.check("lipsync", scores, ["no mouth motion to measure"])
    stats = lipsync_stats(opening, loudness, fps)  # the +-5 frame figures, as `genhuman eval lipsync`
    floored = np.maximum(loudness, np.percentile(loudness, 95) - LOUDNESS_RANGE_DB)
    by_lag = {lag: r for lag, r in lagged_correlations(opening, floored, config.max_lag).items() if np.isfinite(r)}
    best = max(by_lag, key=lambda lag: (by_lag[lag], -abs(lag))) if by_lag else 0
    best_r = by_lag.get(best, nan)
    scores.update(lipsync_correlation=stats.correlation, lipsync_best_lag=float(best),
                  lipsync_best_correlation=best_r, lipsync_closed_in_silence=stats.closed_in_silence)
    failures = []
    if not np.isfinite(best_r) or best_r < config.min_correlation:
        failures.append(f"mouth does not follow the sound (best r {best_r:.2f} < {config.min_correlation:g})")
    elif abs(best) > config.max_abs_offset:
        failures.append(f"audio offset {best:+d} frames beyond +-{config.max_abs_offset}")
    return Verdict.check("lipsync", scores, failures)
