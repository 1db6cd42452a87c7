"""Where the embedded language model's tokens are computed: a thread, or a process of its own.

Both run :func:`genhuman.live.decoding.decode` and hand back token ids on a queue, one
generation at a time, cancellable between any two tokens:
- :class:`ThreadRunner` decodes in a thread of this process (scripts, tests, ``--prepare``).
- :class:`ProcessRunner` decodes in a child process (the live server). A transformers forward
  pass is thousands of small PyTorch calls, each holding the GIL: in the server beside the
  media clock, the WebRTC event loop, voice activity and recognition, the same model took
  ~6x longer to its first token than alone (760 vs ~130 ms). In its own process it has its
  own interpreter lock, and the prefix cache lives there too.

Prompts are tokenised and answers detokenised by the caller; only token ids cross the pipe.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from genhuman.live.decoding import PrefixCache, Sampling, decode

log = logging.getLogger(__name__)

DONE = object()  # the end of a generation's queue


@dataclass
class Generation:
    """One answer being computed: ``queue`` yields token ids, then an exception or :data:`DONE`."""

    queue: "queue.Queue[Any]" = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    on_cancel: Optional[Callable[[], None]] = None
    thread: Optional[threading.Thread] = None

    def cancel(self) -> None:
        self.cancelled.set()
        if self.on_cancel is not None:
            self.on_cancel()

    def tokens(self, poll_s: float = 0.01, should_stop: Callable[[], bool] = lambda: False):
        """The token ids until the end; cancels (and drains) once ``should_stop()`` is true."""
        while True:
            try:
                item = self.queue.get(timeout=poll_s)
            except queue.Empty:
                if should_stop() and not self.cancelled.is_set():
                    self.cancel()
                continue
            if item is DONE:
                return
            if isinstance(item, BaseException):
                raise item
            if should_stop():
                if not self.cancelled.is_set():
                    self.cancel()
                continue  # drain to the end
            yield item


class ThreadRunner:
    """Decodes with ``model`` in a thread of this process."""

    def __init__(self, model, prefixes: Optional[PrefixCache] = None):
        self.model = model
        self.prefixes = prefixes if prefixes is not None else PrefixCache()

    def start(self, prompt: Sequence[int], sampling: Sampling, stop_ids: frozenset[int]) -> Generation:
        generation = Generation()

        def work() -> None:
            try:
                for token in decode(self.model, prompt, sampling, stop_ids, cache=self.prefixes,
                                    should_stop=generation.cancelled.is_set):
                    generation.queue.put(token)
            except BaseException as exc:  # noqa: BLE001 - raised on the consumer's side
                generation.queue.put(exc)
            finally:
                generation.queue.put(DONE)

        generation.thread = threading.Thread(target=work, name="embedded-llm", daemon=True)
        generation.thread.start()
        return generation

    def close(self) -> None:
        pass


class RunnerError(RuntimeError):
    pass


class ProcessRunner:
    """Decodes in a child process (``python -m genhuman.live.runners``) that loads its model
    from ``spec`` (see :func:`load_model`).

    A plain subprocess, not multiprocessing: a spawned multiprocessing child re-runs the
    parent's main script, which a script without the ``__main__`` guard cannot survive.
    Messages are pickled over a socket pair; cancel is a message the child reads between
    tokens. The child exits when the parent goes away (end of file on its socket)."""

    def __init__(self, spec: tuple, threads: int = 1, ready_timeout_s: float = 600.0, niceness: int = 0):
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        mine, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "genhuman.live.runners", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        self._conn = Connection(mine.detach())
        self._send_lock = threading.Lock()
        self._current: Optional[tuple[int, Generation]] = None
        self._next_id = 0
        self.alive = True
        self._send(("load", 0, (spec, threads, niceness)))
        self.info = self._wait_ready(ready_timeout_s)
        self._reader = threading.Thread(target=self._read, name="genhuman-llm-reader", daemon=True)
        self._reader.start()

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _wait_ready(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._conn.poll(0.1):
                try:
                    kind, _, payload = self._conn.recv()
                except (EOFError, OSError):
                    break
                if kind == "ready":
                    return payload
                self.close()
                raise RunnerError(payload)
            if self.process.poll() is not None:
                break
        self.close()
        raise RunnerError(f"the language model process did not start (exit code {self.process.poll()})")

    def start(self, prompt: Sequence[int], sampling: Sampling, stop_ids: frozenset[int]) -> Generation:
        if not self.alive:
            raise RunnerError("the language model process has stopped")
        with self._send_lock:
            self._next_id += 1
            request = self._next_id
            generation = Generation()
            generation.on_cancel = lambda: self._cancel(request)
            self._current = (request, generation)
            try:
                self._conn.send(("generate", request, (list(prompt), sampling, sorted(stop_ids))))
            except (OSError, ValueError) as exc:
                self.alive = False
                raise RunnerError(f"the language model process has stopped ({exc})") from exc
        return generation

    def _cancel(self, request: int) -> None:
        try:
            self._send(("cancel", request, None))
        except (OSError, ValueError):
            pass

    def _read(self) -> None:
        while True:
            try:
                kind, request, payload = self._conn.recv()
            except (EOFError, OSError):
                break
            current = self._current
            if current is None or current[0] != request:
                continue  # a cancelled generation's tail
            generation = current[1]
            if kind == "token":
                generation.queue.put(payload)
            elif kind == "done":
                if payload is not None:
                    generation.queue.put(RunnerError(payload))
                generation.queue.put(DONE)
        self.alive = False
        current = self._current
        if current is not None:  # the child died mid-answer
            current[1].queue.put(RunnerError(f"the language model process stopped (exit code "
                                             f"{self.process.poll()})"))
            current[1].queue.put(DONE)

    def kill(self) -> None:
        """End the child at once (tests: a crash)."""
        self.process.kill()

    def close(self) -> None:
        import subprocess

        self.alive = False
        try:
            self._send(("stop", 0, None))
        except (OSError, ValueError):
            pass
        try:
            self.process.wait(timeout=0.5)  # it holds nothing worth waiting for
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._conn.close()


def load_model(spec: tuple):
    """The model a child process decodes with, from a picklable ``spec``:

    - ``("embedded", gguf_path, cache_dir, quantize)``: SmolLM2 (see ``genhuman.live.llm``);
    - ``("tiny-llama", config_kwargs, seed, delay_s)``: a tiny random Llama (tests), ``delay_s``
      added to every forward pass.
    """
    kind = spec[0]
    if kind == "embedded":
        from pathlib import Path

        from genhuman.live.llm import load_embedded, quantize_linear_layers

        _, gguf, cache, quantize = spec
        model, _ = load_embedded(Path(gguf), Path(cache))
        model.eval()
        if quantize:
            quantize_linear_layers(model)
        return model
    if kind == "tiny-llama":
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        _, config, seed, delay_s = spec
        torch.manual_seed(seed)
        model = LlamaForCausalLM(LlamaConfig(**config)).eval()
        return _Slowed(model, delay_s) if delay_s else model
    raise ValueError(f"unknown model spec {kind!r}")


class _Slowed:
    def __init__(self, model, delay_s: float):
        self.model, self.delay_s = model, delay_s

    def __call__(self, *args, **kwargs):
        time.sleep(self.delay_s)
        return self.model(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.model, name)


class _Inbox:
    """The child's side of the socket: requests in order, cancels noticed between tokens."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.waiting: list[tuple] = []
        self.cancelled: set[int] = set()
        self.finished = 0  # the last request answered: its late cancel (sent on close) is moot

    def _take(self, message: tuple) -> None:
        if message[0] == "cancel":
            if message[1] > self.finished:
                self.cancelled.add(message[1])
        else:
            self.waiting.append(message)

    def next(self) -> tuple:
        while not self.waiting:
            self._take(self.conn.recv())
        return self.waiting.pop(0)

    def is_cancelled(self, request: int) -> bool:
        while self.conn.poll():
            self._take(self.conn.recv())
        return request in self.cancelled


def _serve(conn) -> None:
    """The child process: load, say ready, then answer requests until told to stop."""
    inbox = _Inbox(conn)
    started = time.monotonic()
    try:
        kind, _, (spec, threads, niceness) = inbox.next()
        if niceness > 0 and hasattr(os, "nice"):
            os.nice(niceness)
        import torch

        torch.set_num_threads(max(int(threads), 1))
        model = load_model(spec)
    except (EOFError, OSError, KeyboardInterrupt):
        return
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("failed", 0, f"the language model could not be loaded: {exc}"))
        return
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    conn.send(("ready", 0, {"load_s": time.monotonic() - started, "eos_token_id": eos}))
    prefixes = PrefixCache()
    while True:
        try:
            kind, request, payload = inbox.next()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if kind == "stop":
            return
        prompt, sampling, stop_ids = payload
        try:
            for token in decode(model, prompt, sampling, frozenset(stop_ids), cache=prefixes,
                                should_stop=functools.partial(inbox.is_cancelled, request)):
                conn.send(("token", request, token))
            conn.send(("done", request, None))
        except (EOFError, OSError, KeyboardInterrupt):
            return
        except Exception as exc:  # noqa: BLE001 - the parent raises it for this answer
            conn.send(("done", request, f"{type(exc).__name__}: {exc}"))
        inbox.cancelled.discard(request)
        inbox.finished = request


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m genhuman.live.runners FD``: the child of :class:`ProcessRunner`."""
    import sys
    from multiprocessing.connection import Connection

    args = sys.argv[1:] if argv is None else argv
    _serve(Connection(int(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
