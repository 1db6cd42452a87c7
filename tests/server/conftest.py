"""Fixtures for the server tests: small real media, an app factory, a uvicorn launcher."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from genhuman.engines import ENGINES

HERE = Path(__file__).resolve().parent
FAKE_ENGINE = "server.fake_engine:FakeEngine"


@pytest.fixture(scope="session")
def small_portrait(portrait_path, tmp_path_factory) -> Path:
    """96x96 head shot cut from the example portrait (fast for the lite engine)."""
    from PIL import Image

    out = tmp_path_factory.mktemp("media") / "face96.png"
    Image.open(portrait_path).convert("RGB").crop((145, 44, 305, 204)).resize((96, 96), Image.LANCZOS).save(out)
    return out


@pytest.fixture(scope="session")
def short_speech(speech_path, tmp_path_factory) -> Path:
    """0.5 s of the example speech (a voiced stretch), 16 kHz WAV."""
    from genhuman.media import load_audio, save_wav

    wave = load_audio(speech_path)
    out = tmp_path_factory.mktemp("media") / "speech05.wav"
    save_wav(out, wave[8000:16000])
    return out


@pytest.fixture()
def fake_engine(monkeypatch):
    monkeypatch.setitem(ENGINES, "fake", FAKE_ENGINE)
    from server.fake_engine import FakeEngine

    FakeEngine.loads = FakeEngine.prepares = 0
    return FakeEngine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``genhuman serve`` in a subprocess (plus the fake engine), on a free loopback port."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "serve_for_tests.py"), "serve", "--port", str(self.port),
             "--data-dir", str(data_dir), *args],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(f"server did not start: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture()
def start_server(tmp_path):
    started: list[ServerProcess] = []

    def start(*args: str, data_dir: Path | None = None, env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path, *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def wait_for(client: httpx.Client, job_id: str, timeout: float = 60.0, until=("succeeded", "failed", "cancelled")):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s")


def silence_wav(path: Path, seconds: float = 1.0) -> Path:
    from genhuman.media import save_wav

    save_wav(path, np.zeros(int(16000 * seconds), np.float32))
    return path
