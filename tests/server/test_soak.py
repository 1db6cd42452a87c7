"""A short soak against a real server process: 60 jobs from 8 concurrent clients leave
its memory and thread count flat (benchmarks/bench_server_load.py runs the 500-job one)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import wait_for


def rss_and_threads(pid: int) -> tuple[float, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


@pytest.mark.slow
def test_sixty_jobs_from_eight_clients_keep_memory_and_threads_flat(start_server, small_portrait, short_speech):
    server = start_server("--engine", "fake", "--rate-limit", "0")
    image, audio = small_portrait.read_bytes(), short_speech.read_bytes()
    done: list[str] = []
    marks: dict[int, tuple[float, int]] = {}
    lock = threading.Lock()

    def client_loop(_: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while True:
                with lock:
                    if len(done) >= 60:
                        return
                r = client.post("/v1/jobs", files={"image": ("f.png", image), "audio": ("s.wav", audio)})
                if r.status_code in (429, 503):
                    continue
                assert r.status_code == 202, r.text
                status = wait_for(client, r.json()["id"])["status"]
                with lock:
                    done.append(status)
                    if len(done) in (20, 60):
                        marks[len(done)] = rss_and_threads(server.proc.pid)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client_loop, range(8)))
    assert done[:60] == ["succeeded"] * 60
    (rss_20, threads_20), (rss_60, threads_60) = marks[20], marks[60]
    print(f"\nsoak: RSS {rss_20:.0f} MB after 20 jobs, {rss_60:.0f} MB after 60; threads {threads_20} -> {threads_60}")
    assert rss_60 <= rss_20 * 1.2
    assert threads_60 <= threads_20 + 8  # the request thread pool may grow a little; nothing per job
