"""A per-client token bucket: ``rate`` submissions per minute, ``burst`` at once."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from typing import Optional

MAX_CLIENTS = 10_000  # buckets kept; the least recently seen client is forgotten first


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, clock=time.monotonic):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, time)
        self._lock = threading.Lock()

    def take(self, key: str) -> Optional[int]:
        """Spend one token of ``key``'s bucket: None when allowed, else the seconds to wait."""
        if self.rate <= 0:
            return None
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return None if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))
