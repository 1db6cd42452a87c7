"""Near-duplicates: a 64-bit perceptual hash (DCT of a 32x32 grey copy) of keyframes; a
segment whose keyframes are within ``max_hamming`` bits (mean) of an earlier kept segment
is dropped. Decided over the whole run, in manifest order, so it is the same every run."""

from __future__ import annotations

import cv2
import numpy as np

from genhuman.curate.config import DedupConfig


def phash(frame: np.ndarray) -> int:
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].reshape(-1)
    bits = low > np.median(low[1:])  # the DC term would dominate the median
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def keyframe_hashes(frames: list[np.ndarray], config: DedupConfig) -> str:
    picks = np.unique(np.linspace(0, len(frames) - 1, config.keyframes).round().astype(int))
    return ",".join(f"{phash(frames[i]):016x}" for i in picks)


def distance(a: str, b: str) -> float:
    ha, hb = [int(x, 16) for x in a.split(",")], [int(x, 16) for x in b.split(",")]
    return float(np.mean([bin(x ^ y).count("1") for x, y in zip(ha, hb)]))


def find_duplicates(hashes: list[str], candidates: list[bool], config: DedupConfig) -> list[int]:
    """For each row: the index of the earlier kept row it duplicates, or -1. Only rows that
    are ``candidates`` (passed every other stage) keep their place and can be duplicated."""
    kept: list[int] = []
    out = []
    for i, (value, candidate) in enumerate(zip(hashes, candidates)):
        match = -1
        if candidate and value:
            for j in kept:
                if distance(value, hashes[j]) <= config.max_hamming:
                    match = j
                    break
            if match < 0:
                kept.append(i)
        out.append(match)
    return out
