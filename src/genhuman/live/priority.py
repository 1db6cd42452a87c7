"""Scheduling priority of the answer side against the media side of the live server.

When several sessions answer at once on two cores, the CPU is short: the language model and
the voice should wait, the frames and the audio packets should not (a late frame is a
stutter everyone sees; a late answer is a pause). Answer threads and the language model's
process run this many nice steps below the media clock.
"""

from __future__ import annotations

import os
import threading

ANSWER_NICENESS = 4


def lower_thread_priority(steps: int = ANSWER_NICENESS) -> None:
    """Lower the calling thread's scheduling priority (on Linux nice is per thread); a no-op
    where that is not possible."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + steps)
    except (AttributeError, OSError):
        pass
