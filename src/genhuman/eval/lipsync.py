"""Lip-sync measurement from an output video alone (its frames and its audio track).

- opening: inner-lip gap / outer-eye-corner distance per frame (face mesh).
- loudness: RMS dB of the audio under each frame, floored at ``speech level - 50 dB``
  so that the depth of digital silence does not dominate the correlation.
- correlation: Pearson r of opening and loudness at lags -5..+5 frames. A positive lag
  means the mouth moves *after* the sound (opening[t + lag] pairs with loudness[t]).
- silences: runs of frames quieter than ``speech level - 30 dB`` (speech level = 95th
  percentile of frame loudness) lasting at least 240 ms. One frame (40 ms at 25 fps) is
  dropped at each end of a run: real mouths start moving just before sound starts and
  finish just after it stops.
- closed: opening <= rest + 25% of (typical max - rest), with rest and typical max the 5th
  and 95th percentiles of the opening. Relative to the video's own range, so a portrait
  whose lips rest slightly apart still counts as closed at rest. Given the portrait
  (``--portrait``), its own opening may serve as the rest instead (the larger threshold wins):
  a photo that smiles with parted lips, animated with lips that close fully on m/b/p, rests
  more open than its 5th percentile.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from genhuman.errors import InputError
from genhuman.eval.tracks import loudness_track, mouth_opening, mouth_opening_track
from genhuman.media import SAMPLE_RATE, load_audio, read_video_info

MAX_LAG = 5
MIN_SILENCE_S = 0.24
SILENCE_BELOW_SPEECH_DB = 30.0
LOUDNESS_RANGE_DB = 50.0
CLOSED_FRACTION = 0.25
EDGE_S = 0.04


@dataclass
class LipSyncReport:
    frames: int
    fps: float
    face_frames: int  # frames where a face was found
    correlation: float  # at lag 0
    best_lag: int  # frames; positive = mouth after sound
    best_correlation: float
    correlation_by_lag: dict[int, float]
    silence_runs: int  # silences >= 240 ms
    silence_frames: int  # frames inside them (ends trimmed)
    closed_silence_frames: int
    closed_in_silence: float  # share, NaN without silences
    closed_threshold: float
    opening: np.ndarray = field(repr=False)
    loudness_db: np.ndarray = field(repr=False)
    rest_opening: Optional[float] = None  # the portrait's own opening, when it was given

    def summary(self) -> dict:
        data = asdict(self)
        data.pop("opening")
        data.pop("loudness_db")
        data["correlation_by_lag"] = {str(k): v for k, v in self.correlation_by_lag.items()}
        return data

    def to_json(self) -> str:
        return json.dumps(self.summary(), indent=2, allow_nan=True)

    def to_text(self) -> str:
        lags = "  ".join(f"{lag:+d}:{r:.2f}" for lag, r in self.correlation_by_lag.items())
        return "\n".join([
            f"frames              {self.frames} at {self.fps:g} fps ({self.face_frames} with a face)",
            f"correlation (lag 0) {self.correlation:.3f}",
            f"best lag            {self.best_lag:+d} frames (r = {self.best_correlation:.3f})",
            f"by lag              {lags}",
            f"silences >= 240 ms  {self.silence_runs} ({self.silence_frames} frames)",
            (f"closed in silence   {self.closed_in_silence:.1%} ({self.closed_silence_frames}/{self.silence_frames})"
             if self.silence_frames else "closed in silence   n/a (no silence of 240 ms or more)"),
            *([f"portrait's opening {self.rest_opening:.3f} (closed: opening <= {self.closed_threshold:.3f})"]
              if self.rest_opening is not None else []),
        ])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def lagged_correlations(opening: np.ndarray, loudness: np.ndarray, max_lag: int = MAX_LAG) -> dict[int, float]:
    """r(opening[t + lag], loudness[t]) for each lag in -max_lag..max_lag."""
    n = len(opening)
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        if abs(lag) >= n:  # a video shorter than the lag: nothing overlaps
            out[lag] = float("nan")
        elif lag >= 0:
            out[lag] = pearson(opening[lag:], loudness[:n - lag])
        else:
            out[lag] = pearson(opening[:n + lag], loudness[-lag:])
    return out


def silence_mask(loudness_db: np.ndarray, fps: float) -> tuple[np.ndarray, int]:
    """Frames inside silences of at least 240 ms (ends trimmed), and how many such runs."""
    speech_level = np.percentile(loudness_db, 95)
    quiet = loudness_db < speech_level - SILENCE_BELOW_SPEECH_DB
    min_frames = int(np.ceil(MIN_SILENCE_S * fps - 1e-9))
    edge = max(1, int(round(EDGE_S * fps)))
    mask = np.zeros_like(quiet)
    runs = 0
    start = None
    for i, value in enumerate(np.append(quiet, False)):
        if value and start is None:
            start = i
        elif not value and start is not None:
            if i - start >= min_frames:
                runs += 1
                mask[start + edge:i - edge] = True
            start = None
    return mask, runs


def closed_threshold(opening: np.ndarray, rest_opening: Optional[float] = None) -> float:
    values = opening[np.isfinite(opening)]
    rest, top = np.percentile(values, 5), np.percentile(values, 95)
    threshold = float(rest + CLOSED_FRACTION * (top - rest))
    if rest_opening is not None:
        threshold = max(threshold, float(rest_opening + CLOSED_FRACTION * (top - rest_opening)))
    return threshold


def lipsync_stats(opening: np.ndarray, loudness_db: np.ndarray, fps: float,
                  rest_opening: Optional[float] = None) -> LipSyncReport:
    """All figures from the two per-frame tracks (same length); ``rest_opening``: the portrait's."""
    if len(opening) != len(loudness_db):
        raise ValueError("opening and loudness tracks differ in length")
    face_frames = int(np.isfinite(opening).sum())
    if face_frames < 3:
        raise InputError("no face could be tracked in the video, so lip sync cannot be measured")
    floored = np.maximum(loudness_db, np.percentile(loudness_db, 95) - LOUDNESS_RANGE_DB)
    by_lag = lagged_correlations(opening, floored)
    finite = {lag: r for lag, r in by_lag.items() if np.isfinite(r)}
    best_lag = max(finite, key=lambda lag: (finite[lag], -abs(lag))) if finite else 0
    silent, runs = silence_mask(loudness_db, fps)
    threshold = closed_threshold(opening, rest_opening)
    judged = silent & np.isfinite(opening)
    closed = int((opening[judged] <= threshold).sum())
    return LipSyncReport(
        frames=len(opening), fps=float(fps), face_frames=face_frames, correlation=by_lag[0],
        best_lag=int(best_lag), best_correlation=by_lag[best_lag], correlation_by_lag=by_lag,
        silence_runs=runs, silence_frames=int(judged.sum()), closed_silence_frames=closed,
        closed_in_silence=closed / judged.sum() if judged.any() else float("nan"),
        closed_threshold=threshold, opening=opening, loudness_db=loudness_db, rest_opening=rest_opening,
    )


def measure_lipsync(video: str | Path, portrait: Optional[str | Path] = None, face_index: int = 0) -> LipSyncReport:
    """Measure lip sync of a talking-head MP4 from its own frames and audio track; with the
    ``portrait`` it was made from, "closed" may also mean "back at the portrait's own mouth"."""
    rest = None
    if portrait is not None:
        from genhuman.face import face_landmarks
        from genhuman.media import load_image

        rest = mouth_opening(face_landmarks(load_image(portrait), face_index).landmarks)
    info = read_video_info(video)
    if not info.has_audio:
        raise InputError(f"{str(video)!r} has no audio track, so lip sync cannot be measured")
    opening = mouth_opening_track(video)
    wave = load_audio(video, SAMPLE_RATE)
    loudness = loudness_track(wave, info.fps, len(opening))
    return lipsync_stats(opening, loudness, info.fps, rest)
