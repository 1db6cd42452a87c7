"""Timing helpers shared by the benchmarks (this folder is on sys.path when a script runs)."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_ms(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in milliseconds over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
