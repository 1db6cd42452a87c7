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

import logging
import multiprocessing
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
    """Decodes in a child process that loads its model from ``spec`` (see :func:`load_model`)."""

    def __init__(self, spec: tuple, threads: int = 1, ready_timeout_s: float = 600.0, niceness: int = 0):
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
        self._conn, child_conn = context.Pipe()
        self._cancel_id = context.Value("q", -1, lock=False)
        self.process = context.Process(target=_serve, args=(spec, threads, child_conn, self._cancel_id, niceness),
                                       name="genhuman-llm", daemon=True)
        self.process.start()
        child_conn.close()
        self._send_lock = threading.Lock()
        self._current: Optional[tuple[int, Generation]] = None
        self._next_id = 0
        self.alive = True
        self.info = self._wait_ready(ready_timeout_s)
        self._reader = threading.Thread(target=self._read, name="genhuman-llm-reader", daemon=True)
        self._reader.start()

    def _wait_ready(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._conn.poll(0.1):
                try:
                    kind, payload = self._conn.recv()
                except EOFError:
                    break
                if kind == "ready":
                    return payload
                self.close()
                raise RunnerError(payload)
            if not self.process.is_alive():
                break
        self.close()
        raise RunnerError(f"the language model process did not start (exit code {self.process.exitcode})")

    def start(self, prompt: Sequence[int], sampling: Sampling, stop_ids: frozenset[int]) -> Generation:
        if not self.alive:
            raise RunnerError("the language model process has stopped")
        with self._send_lock:
            self._next_id += 1
            request = self._next_id
            generation = Generation()
            generation.on_cancel = lambda: setattr(self._cancel_id, "value", request)
            self._current = (request, generation)
            try:
                self._conn.send(("generate", request, list(prompt), sampling, sorted(stop_ids)))
            except (OSError, ValueError) as exc:
                self.alive = False
                raise RunnerError(f"the language model process has stopped ({exc})") from exc
        return generation

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
                                             f"{self.process.exitcode})"))
            current[1].queue.put(DONE)

    def close(self) -> None:
        self.alive = False
        try:
            with self._send_lock:
                self._conn.send(("stop", 0, None))
        except (OSError, ValueError):
            pass
        self.process.join(timeout=0.5)  # it holds nothing worth waiting for
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=2.0)
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


def _serve(spec: tuple, threads: int, conn, cancel_id, niceness: int = 0) -> None:
    """The child process: load, say ready, then answer requests until told to stop."""
    started = time.monotonic()
    if niceness > 0 and hasattr(os, "nice"):
        os.nice(niceness)
    try:
        import torch

        torch.set_num_threads(max(int(threads), 1))
        model = load_model(spec)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("failed", f"the language model could not be loaded: {exc}"))
        return
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    conn.send(("ready", {"load_s": time.monotonic() - started, "eos_token_id": eos}))
    prefixes = PrefixCache()
    while True:
        try:
            kind, request, *rest = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if kind == "stop":
            return
        prompt, sampling, stop_ids = rest
        try:
            for token in decode(model, prompt, sampling, frozenset(stop_ids), cache=prefixes,
                                should_stop=lambda request=request: cancel_id.value == request):
                conn.send(("token", request, token))
            conn.send(("done", request, None))
        except (EOFError, OSError, KeyboardInterrupt):
            return
        except Exception as exc:  # noqa: BLE001 - the parent raises it for this answer
            conn.send(("done", request, f"{type(exc).__name__}: {exc}"))
