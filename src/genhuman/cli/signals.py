"""SIGTERM and SIGHUP end a command the way Ctrl-C does.

Python turns only SIGINT into an exception; SIGTERM (``kill``, a container stop, a job
scheduler) and SIGHUP (a closed terminal) would end the process at once and leave the
video writer's hidden ``.partial.mp4`` behind. Here they raise :class:`Terminated`, a
KeyboardInterrupt, so every ``finally``/``__exit__`` clean-up that Ctrl-C runs runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

HANDLED = ("SIGTERM", "SIGHUP")


class Terminated(KeyboardInterrupt):
    """The process got ``signum``; the CLI exits with 128 + ``signum``, as a shell would."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread."""
    if threading.current_thread() is not threading.main_thread():  # signal.signal would fail
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: object) -> None:
        # A second signal must not cut the clean-up of the first one short.
        for number in previous:
            signal.signal(number, signal.SIG_IGN)
        raise Terminated(signum)

    for name in HANDLED:
        number = getattr(signal, name, None)
        if number is None or signal.getsignal(number) == signal.SIG_IGN:  # absent, or nohup's choice
            continue
        previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
