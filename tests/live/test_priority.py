"""genhuman.live.priority: an answer thread runs below the media clock; other threads do not move."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from genhuman.live.priority import ANSWER_NICENESS, lower_thread_priority


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_only_the_calling_thread_is_lowered():
    seen: dict[str, int] = {}

    def answer_thread() -> None:
        before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        lower_thread_priority()
        seen["lowered_by"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - before

    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=answer_thread)
    thread.start()
    thread.join()
    assert seen["lowered_by"] == min(ANSWER_NICENESS, 19 - main_before)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before
