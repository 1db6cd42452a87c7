"""An in-process live server (uvicorn on a thread, loopback) whose sessions use stand-ins
for the slow parts a test chooses to replace (language model, recognizer)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import httpx
import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class FixedRecognizer:
    """Recognises every turn as ``text`` (tests that are not about recognition)."""

    def __init__(self, text: str = "hello there") -> None:
        self.text = text
        self.heard = 0

    def start(self) -> None:
        self.heard = 0

    def push(self, samples: np.ndarray) -> Optional[str]:
        self.heard += len(samples)
        return None

    def finish(self) -> str:
        return self.text


class LiveServer:
    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="live-test-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the test server did not start"
            time.sleep(0.02)

    @property
    def live(self) -> Any:
        return self.app.state.live

    def running(self) -> int:
        return httpx.get(f"{self.url}/v1/live/sessions").json()["running"]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def warm_voice() -> None:
    """Piper loaded once (a cold voice takes ~1 s, which a latency check should not count)."""
    from genhuman.live.voice import speak

    speak("Hello.")


@pytest.fixture
def live_server(tmp_path, warm_voice) -> Callable[..., LiveServer]:
    from genhuman.live.options import LiveOptions
    from genhuman.server.app import create_app
    from genhuman.server.settings import ServerSettings

    started: list[LiveServer] = []

    def start(llm: Any = None, recognizer: Any = None, **options: Any) -> LiveServer:
        from genhuman.live.llm import ScriptedLLM

        settings = ServerSettings(data_dir=tmp_path, live=LiveOptions(**options),
                                  live_portraits=[EXAMPLES / "astronaut.png"], live_warm_up=False, engines=["lite"])
        app = create_app(settings, start_workers=False)
        live = app.state.live
        live._llm = llm or ScriptedLLM("Hello. Nice to meet you.")
        live._recognizer_factory = (lambda: recognizer) if recognizer is not None else (lambda: FixedRecognizer())
        server = LiveServer(app, free_port())
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def question_16k() -> np.ndarray:
    """Piper speech of a short question, 16 kHz, with 0.3 s of silence after."""
    from genhuman.live.voice import speak

    wave = speak("Wait, stop please.").samples
    return np.concatenate([wave, np.zeros(4800, np.float32)])
