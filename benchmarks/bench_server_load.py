"""Server load benchmark: a soak (many jobs from concurrent clients: memory and threads
stay flat) and a burst (many submissions at once: how soon the server refuses, how fast
it answers the ones it takes).

    .venv/bin/python benchmarks/bench_server_load.py [--soak 500] [--clients 8] [--burst 200]

The server is a real ``genhuman serve`` process on a loopback port with the test-only
fake engine (tests/server/fake_engine.py: a real 64x64 MP4 of 4 frames; the submission
is checked like any other: header probe, decode, face detection at admission, audio
check). Its RSS and thread count are read from /proc/<pid>/status. The portrait is a
96x96 crop of examples/astronaut.png, the speech 0.5 s of examples/speech.wav.

Soak: each client submits a job, waits for it (and retries on 429/503 after Retry-After),
then submits the next; RSS and threads are taken after the first 50 jobs and after the
last. Each client has its own token, and the per-client rate limit is off for the soak
(--rate-limit 0) so that it measures memory, not waiting.

Burst: one warm-up job (the models load), then ``--burst`` submissions at once from one
address with the default settings (queue 32, rate limit 60/min with a burst of 20,
validation pool of 2 + backlog 8): the time from the start to the first 429, and the
latency of the accepted ones. ``--burst-only`` skips the soak (it also runs against
older servers); ``--legacy`` runs the soak without tokens or --rate-limit (for older
servers, which lack them).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "tests" / "server" / "serve_for_tests.py"


def media() -> tuple[bytes, bytes]:
    from PIL import Image

    from genhuman.media import load_audio, save_wav

    buffer = io.BytesIO()
    Image.open(ROOT / "examples" / "astronaut.png").convert("RGB").crop((145, 44, 305, 204)) \
        .resize((96, 96), Image.LANCZOS).save(buffer, format="PNG")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        save_wav(wav, load_audio(ROOT / "examples" / "speech.wav")[8000:16000])
        return buffer.getvalue(), wav.read_bytes()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(SERVE), "serve", "--port", str(self.port),
                                      "--data-dir", str(data_dir), "--engine", "fake", *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError("the server did not start")

    def status(self) -> tuple[float, int]:
        """(RSS in MB, threads) of the server process."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def submit(client: httpx.Client, image: bytes, audio: bytes, headers: dict[str, str]) -> httpx.Response:
    return client.post("/v1/jobs", headers=headers, files={"image": ("face.png", image), "audio": ("s.wav", audio)})


def wait_done(client: httpx.Client, job_id: str, headers: dict[str, str]) -> str:
    while True:
        status = client.get(f"/v1/jobs/{job_id}", headers=headers).json()["status"]
        if status in ("succeeded", "failed", "cancelled"):
            return status
        time.sleep(0.02)


def soak(jobs: int, clients: int, image: bytes, audio: bytes, legacy: bool = False) -> dict:
    tokens = [f"client-token-{i}" for i in range(clients)]
    flags = [] if legacy else ["--token", tokens[0], *[a for t in tokens[1:] for a in ("--client-token", t)],
                               "--rate-limit", "0"]
    if legacy:
        tokens = [""] * clients
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), *flags)
        try:
            before = server.status()
            done: list[str] = []
            lock = threading.Lock()
            marks: dict[str, tuple[float, int]] = {}
            refused = [0]

            def client_loop(token: str) -> None:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                with httpx.Client(base_url=server.url, timeout=60) as client:
                    while True:
                        with lock:
                            if len(done) >= jobs:
                                return
                        r = submit(client, image, audio, headers)
                        if r.status_code in (429, 503):
                            with lock:
                                refused[0] += 1
                            time.sleep(min(2.0, float(r.headers.get("retry-after", "1"))))
                            continue
                        assert r.status_code == 202, r.text
                        status = wait_done(client, r.json()["id"], headers)
                        with lock:
                            if len(done) >= jobs:
                                return
                            done.append(status)
                            if len(done) == 50:
                                marks["after_50"] = server.status()

            started = time.monotonic()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(client_loop, tokens))
            elapsed = time.monotonic() - started
            time.sleep(1.0)
            after = server.status()
            return {"jobs": len(done), "succeeded": done.count("succeeded"), "refused_retried": refused[0],
                    "seconds": elapsed, "before": before, "after_50": marks["after_50"], "after": after}
        finally:
            server.stop()


def burst(count: int, image: bytes, audio: bytes, server_args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), *server_args)
        try:
            with httpx.Client(base_url=server.url, timeout=120) as client:  # warm-up: models loaded
                assert submit(client, image, audio, {}).status_code == 202
            time.sleep(2.0)
            gate = threading.Barrier(count)
            answers: list[tuple[int, float, float]] = []  # status, sent at, latency
            started = [0.0]
            lock = threading.Lock()

            def one(_: int) -> None:
                with httpx.Client(base_url=server.url, timeout=120) as client:
                    gate.wait()
                    if not started[0]:
                        started[0] = time.monotonic()
                    sent = time.monotonic()
                    r = submit(client, image, audio, {})
                    with lock:
                        answers.append((r.status_code, sent, time.monotonic() - sent))

            with ThreadPoolExecutor(count) as pool:
                list(pool.map(one, range(count)))
            first = min(sent + latency for status, sent, latency in answers if status == 429) - started[0] \
                if any(a[0] == 429 for a in answers) else None
            first_refusal = min(sent + latency for status, sent, latency in answers if status != 202) - started[0] \
                if any(a[0] != 202 for a in answers) else None
            accepted = [latency for status, _, latency in answers if status == 202]
            refused = [latency for status, _, latency in answers if status != 202]
            codes: dict[int, int] = {}
            for status, _, _ in answers:
                codes[status] = codes.get(status, 0) + 1
            rss, threads = server.status()
            return {"codes": codes, "first_429": first, "first_refusal": first_refusal, "accepted_p50": statistics.median(accepted) if accepted else None,
                    "accepted_max": max(accepted) if accepted else None,
                    "refused_p50": statistics.median(refused) if refused else None, "rss": rss, "threads": threads}
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--soak", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--burst-only", action="store_true")
    parser.add_argument("--legacy", action="store_true", help="soak without the flags older servers lack "
                        "(tokens, --rate-limit): for before/after figures")
    parser.add_argument("--burst-server-args", default="", help="extra `genhuman serve` flags for the burst, "
                        "e.g. '--rate-limit 0' (refusals from the queue and the validation pool only)")
    args = parser.parse_args()
    if args.burst_only:
        args.soak = 0
    import fastapi
    import mediapipe
    import uvicorn

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} (at the start; "
          f"the figures are wall times on this machine, client and server sharing it); "
          f"Python {platform.python_version()}, fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}, "
          f"mediapipe {mediapipe.__version__}")
    image, audio = media()
    if args.soak:
        s = soak(args.soak, args.clients, image, audio, args.legacy)
        growth = (s["after"][0] - s["after_50"][0]) / s["after_50"][0] * 100
        print(f"soak: {s['jobs']} jobs from {args.clients} clients in {s['seconds']:.1f} s, {s['succeeded']} "
              f"succeeded, {s['refused_retried']} refusals retried")
        print(f"  RSS: start {s['before'][0]:.0f} MB, after 50 jobs {s['after_50'][0]:.0f} MB, "
              f"after {s['jobs']} {s['after'][0]:.0f} MB ({growth:+.1f}%)")
        print(f"  threads: start {s['before'][1]}, after 50 jobs {s['after_50'][1]}, after {s['jobs']} {s['after'][1]}")
    if args.burst:
        b = burst(args.burst, image, audio, args.burst_server_args.split())
        first = "none" if b["first_429"] is None else f"{b['first_429']:.3f} s"
        refusal = "none" if b["first_refusal"] is None else f"{b['first_refusal']:.3f} s"
        print(f"burst: {args.burst} submissions at once from one address {args.burst_server_args}: answers "
              f"{b['codes']}; first 429 after {first}, first refusal (429/503) after {refusal}; accepted p50 {b['accepted_p50']:.3f} s (max {b['accepted_max']:.3f} s), refused p50 "
              f"{b['refused_p50']:.3f} s; server RSS {b['rss']:.0f} MB, {b['threads']} threads")


if __name__ == "__main__":
    main()
