"""One line about the machine a benchmark ran on (CPU model, cores, OS, load), for its output."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0]
    busy = " (other work running)" if load > 0.5 else ""
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, load average {load:.1f}{busy}"
