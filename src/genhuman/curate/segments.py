"""Shots -> fixed-length segments (the unit every later stage scores)."""

from __future__ import annotations

from genhuman.curate.config import SegmentConfig


def split_shot(start: int, stop: int, fps: float, config: SegmentConfig) -> list[tuple[int, int]]:
    """Segments of ``length_s`` inside a shot, its edges trimmed by ``shot_margin_frames``; the
    remainder becomes a last segment when it is at least ``min_length_s`` long."""
    start, stop = start + config.shot_margin_frames, stop - config.shot_margin_frames
    length = max(1, round(config.length_s * fps))
    shortest = max(1, round(config.min_length_s * fps))
    out = []
    cursor = start
    while stop - cursor >= length:
        out.append((cursor, cursor + length))
        cursor += length
    if stop - cursor >= shortest:
        out.append((cursor, stop))
    return out


def plan_segments(shots: list[tuple[int, int]], fps: float, config: SegmentConfig) -> list[tuple[int, int, int]]:
    """(shot index, start, stop) of every segment, in order."""
    return [(k, a, b) for k, (start, stop) in enumerate(shots) for a, b in split_shot(start, stop, fps, config)]
