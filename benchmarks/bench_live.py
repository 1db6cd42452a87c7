"""Live conversation, end to end, measured where the user is: the receiving side.

Starts ``genhuman live examples/astronaut.png`` as its own process (embedded defaults: silero
VAD, pocketsphinx, SmolLM2-135M, Piper, lite) and drives it with
:class:`genhuman.live.client.LiveClient`, a real WebRTC peer on loopback whose microphone
plays Piper-made questions. Figures (p50/p95):

- end of the user's speech -> first avatar audio, and -> first frame whose mouth opens;
- typed text -> first frame whose mouth opens;
- barge-in: onset of the user's speech while the avatar talks -> the avatar's audio stops;
- sustained received fps; the server's CPU share per session; sessions that hold 25 fps;
- connect/disconnect cycles: the server's RSS and thread count before and after.

    .venv/bin/python benchmarks/bench_live.py [--turns 20] [--cycles 100] [--max-sessions 5]

The client shares the machine's 2 cores with the server (it decodes H.264 too), so the
session count is a lower bound for a server whose users are elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import machine  # noqa: E402

QUESTIONS = [
    "What is the capital of France?", "How are you today?", "What is your name?", "What color is the sky?",
    "Can you tell me a joke?", "What is two plus two?", "Where do you live?", "What is the weather like?",
    "Do you like music?", "What time is it?", "What is the biggest animal?", "How old are you?",
    "What do cats eat?", "Who wrote Hamlet?", "What is the moon made of?", "Can you help me?",
    "What is your favorite food?", "How far is the sun?", "What is a computer?", "Why is the sea salty?",
    "What day is it today?", "Tell me about dogs.",
]
LONG_ASK = "Please tell me a long story about a dragon who lives in the mountains and loves to read books."
STOP = "Wait, stop, please."


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q / 100.0
    lo, hi = int(np.floor(k)), int(np.ceil(k))
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def row(name: str, values_ms: list[float], unit: str = "ms") -> str:
    if not values_ms:
        return f"| {name} | - | - | 0 |"
    return f"| {name} | {pct(values_ms, 50):.0f} {unit} | {pct(values_ms, 95):.0f} {unit} | {len(values_ms)} |"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def speech_16k(text: str) -> tuple[np.ndarray, float]:
    """Piper speech of ``text`` at 16 kHz and the time of its last sound (s)."""
    from genhuman.live.voice import speak

    wave = speak(text).samples
    loud = np.flatnonzero(np.abs(wave) > 0.01)
    return wave, (loud[-1] + 1) / 16000.0 if len(loud) else len(wave) / 16000.0


FAST_ANSWER = "Sure, here is my answer. I hope that it helps you today."


def fast_llm_server() -> str:
    """A local OpenAI-compatible chat server that streams a fixed answer at once: the stand-in
    for a fast LLM server (vLLM on a GPU), so the figures show everything but the model."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            try:
                for word in FAST_ANSWER.split(" "):
                    chunk = {"choices": [{"delta": {"content": word + " "}}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
            except (BrokenPipeError, ConnectionResetError):  # a barge-in cancelled the answer
                pass

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1"


class Server:
    def __init__(self, port: int, data_dir: Path, max_sessions: int, llm_url: str | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "genhuman", "live", str(ROOT / "examples" / "astronaut.png"), "--no-browser",
               "--port", str(port), "--data-dir", str(data_dir), "--max-sessions", str(max_sessions)]
        if llm_url:
            cmd += ["--llm-url", llm_url]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout_s: float = 240.0) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v1/live/config", timeout=2).json().get("ready"):
                    return time.monotonic() - start
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError("the server did not warm up")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def status(self) -> tuple[float, int]:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        values = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        return int(values["VmRSS"].split()[0]) / 1024.0, int(values["Threads"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


REST_S = 1.5  # between typed questions: the avatar at rest for a full second before the next
BARGE_SILENCE_S = 0.6  # the avatar has stopped: its received audio silent this long


async def answer_done(client, after: float, timeout_s: float = 25.0) -> None:
    """Wait until the avatar has finished answering (state back to listening)."""
    await client.wait_for("answer", timeout_s, after, where=lambda e: e.get("final"))
    await client.wait_for("state", timeout_s, after, where=lambda e: e.get("state") == "listening")


async def spoken_turns(server: Server, questions: list[str], results: dict) -> None:
    from genhuman.live.client import LiveClient

    waves = [speech_16k(q) for q in questions]
    async with LiveClient(server.url) as client:
        await asyncio.sleep(2.0)  # idle frames first: the mouth's closed baseline
        cpu0, t0 = server.cpu_s(), time.monotonic()
        for (wave, last_sound), question in zip(waves, questions):
            clips_before = len(client.mic.speech_started)
            client.say(wave)
            while len(client.mic.speech_started) == clips_before:
                await asyncio.sleep(0.005)
            speech_end = client.mic.speech_started[-1] + last_sound
            try:
                await answer_done(client, speech_end)
            except TimeoutError as exc:
                print(f"  turn {question!r}: {exc}", flush=True)
                continue
            sound = client.first_sound_after(speech_end)
            mouth = client.mouth_moves_after(speech_end)
            heard = [e["text"] for t, e in client.events("transcript") if t >= speech_end]
            if sound is not None:
                results["speech_audio"].append((sound - speech_end) * 1000)
            if mouth is not None:
                results["speech_frame"].append((mouth - speech_end) * 1000)
            for _, event in client.events("latency"):
                if event.get("turn") and event not in results["server_latency"]:
                    results["server_latency"].append(event)
            print(f"  heard {heard[:1]} audio {((sound or speech_end) - speech_end) * 1000:.0f} ms, "
                  f"frame {((mouth or speech_end) - speech_end) * 1000:.0f} ms", flush=True)
            await asyncio.sleep(0.5)
        wall = time.monotonic() - t0
        results["cpu_share"].append((server.cpu_s() - cpu0) / wall)
        video = [t for t, _ in client.received.video if t >= t0]
        results["fps"].append((len(video) - 1) / (video[-1] - video[0]) if len(video) > 1 else 0.0)
        gaps = np.diff(video) * 1000 if len(video) > 2 else np.zeros(1)
        results["frame_gap_p95"].append(float(pct(list(gaps), 95)))


# A typist's pause before Enter: the page sends the draft after 0.3 s without a key
# (live.js DRAFT_PAUSE_MS), then the message when Enter comes.
DRAFT_LEAD_S = 0.6


async def typed_turns(server: Server, texts: list[str], results: dict, drafted: bool = False) -> None:
    """Typed questions. ``drafted``: as the page sends them when the typist pauses
    ``DRAFT_LEAD_S`` before Enter (the draft first); else the message alone, at once."""
    from genhuman.live.client import LiveClient

    suffix = "_draft" if drafted else ""
    async with LiveClient(server.url) as client:
        await asyncio.sleep(2.0)
        for text in texts:
            if drafted:
                client.send({"type": "draft", "text": text})
                await asyncio.sleep(DRAFT_LEAD_S)
            sent = time.monotonic()
            client.send({"type": "text", "text": text})
            try:
                await answer_done(client, sent)
            except TimeoutError as exc:
                print(f"  typed {text!r}: {exc}", flush=True)
                continue
            mouth = client.mouth_moves_after(sent)
            sound = client.first_sound_after(sent)
            if mouth is not None:
                results["text_frame" + suffix].append((mouth - sent) * 1000)
            if sound is not None:
                results["text_audio" + suffix].append((sound - sent) * 1000)
            print(f"  typed{' (drafted)' if drafted else ''} {text!r}: audio "
                  f"{((sound or sent) - sent) * 1000:.0f} ms, frame {((mouth or sent) - sent) * 1000:.0f} ms",
                  flush=True)
            # the mouth-open test compares with the second before the question: let the last answer's
            # received audio and closing mouth come to rest first
            await asyncio.sleep(REST_S)


async def barge_ins(server: Server, tries: int, results: dict) -> None:
    from genhuman.live.client import SILENT_RMS, LiveClient

    stop_wave, _ = speech_16k(STOP)
    onset = np.flatnonzero(np.abs(stop_wave) > 0.01)[0] / 16000.0
    async with LiveClient(server.url) as client:
        await asyncio.sleep(1.0)
        measured = skipped = 0
        while measured < tries and measured + skipped < 2 * tries:
            sent = time.monotonic()
            client.send({"type": "text", "text": LONG_ASK})
            try:
                await client.wait_for("state", 20, sent, where=lambda e: e.get("state") == "speaking")
            except TimeoutError:
                skipped += 1
                continue
            await asyncio.sleep(1.0)
            waited = time.monotonic()  # interrupt while the avatar is sounding, not in a pause between pieces
            while time.monotonic() - waited < 3.0 and not (
                    client.received.audio and client.received.audio[-1][1] > SILENT_RMS):
                await asyncio.sleep(0.01)
            clips = len(client.mic.speech_started)
            client.say(stop_wave)
            while len(client.mic.speech_started) == clips:
                await asyncio.sleep(0.005)
            speech_onset = client.mic.speech_started[-1] + onset
            await asyncio.sleep(1.5)
            # a try counts only if the avatar was audible when the user began (not in a pause between
            # two pieces of its answer); 0.6 s of silence: longer than those pauses, shorter than the
            # wait for the answer to the "stop" turn itself
            audible = any(rms > SILENT_RMS for t, rms in client.received.audio if speech_onset - 0.4 <= t < speech_onset)
            silent = client.silence_after(speech_onset, hold_s=BARGE_SILENCE_S)
            cut = [e["onset_to_cut_ms"] for t, e in client.events("interrupted") if t >= speech_onset]
            if audible and silent is not None:
                measured += 1
                results["barge_in"].append((silent - speech_onset) * 1000)
                results["barge_in_server"] += cut[:1]
            else:
                skipped += 1
            print(f"  barge-in: {'audible' if audible else 'in a pause, not counted'}, audio stopped "
                  f"{((silent or speech_onset) - speech_onset) * 1000:.0f} ms after onset, server cut "
                  f"{cut[0] if cut else '-'} ms", flush=True)
            try:  # the "stop" is a turn too: let its answer finish before the next try
                await answer_done(client, speech_onset, 20)
            except TimeoutError:
                pass
            await asyncio.sleep(0.5)


async def capacity(server: Server, counts: list[int], results: dict) -> None:
    """N sessions at once: received fps of the slowest, first alive between turns (blinks,
    breathing, head motion: a full render every tick), then all answering a typed question."""
    from genhuman.live.client import LiveClient

    def rates(clients, start: float, end: float) -> list[float]:
        return [len([t for t, _ in c.received.video if start <= t <= end]) / (end - start) for c in clients]

    for n in counts:
        clients = [LiveClient(server.url, decode_video=False) for _ in range(n)]
        try:
            for c in clients:
                await c.connect()
            await asyncio.sleep(2.0)
            start = time.monotonic()
            await asyncio.sleep(8.0)
            idle = rates(clients, start, time.monotonic())
            start = time.monotonic()
            for c in clients:
                c.send({"type": "text", "text": "Tell me about the sea and the ships."})
            await asyncio.sleep(8.0)
            talking = rates(clients, start, time.monotonic())
            results["capacity"].append((n, min(idle), min(talking)))
            print(f"  {n} sessions: slowest {min(idle):.1f} fps alive, {min(talking):.1f} fps all answering", flush=True)
        finally:
            for c in clients:
                await c.close()
        await asyncio.sleep(2.0)
        if min(idle) < 24.0:
            break


async def cycles(server: Server, n: int, results: dict) -> None:
    from genhuman.live.client import LiveClient

    async def one() -> None:
        client = LiveClient(server.url, decode_video=False)
        await client.connect()
        deadline = time.monotonic() + 10
        while not client.received.video and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await client.close()

    await one()
    await asyncio.sleep(1.0)
    results["cycles_before"] = server.status()
    for _ in range(n):
        await one()
    await asyncio.sleep(3.0)  # the server notices the closed peers
    results["cycles_after"] = server.status()
    results["sessions_after"] = httpx.get(f"{server.url}/v1/live/sessions").json()["running"]


def report(results: dict, args, ready_s: float, load_before: float) -> str:
    lines = [f"# bench_live — {datetime.date.today().isoformat()}", "",
             f"Machine: {machine()}. Python {platform.python_version()}. Load average before: {load_before:.2f}, "
             f"after: {os.getloadavg()[0]:.2f}.",
             f"Command: `.venv/bin/python benchmarks/bench_live.py --turns {args.turns} --cycles {args.cycles}"
             f"{' --fast-llm' if args.fast_llm else ''} --only {args.only}`. "
             f"Language model: {'a local instant OpenAI-compatible stand-in (--llm-url)' if args.fast_llm else 'embedded SmolLM2-135M'}. "
             f"Server warm-up (model, voice, avatar): {ready_s:.1f} s.", "",
             "| figure | p50 | p95 | n |", "|---|---|---|---|",
             row("end of speech -> first avatar audio", results["speech_audio"]),
             row("end of speech -> first mouth-open frame", results["speech_frame"]),
             row("typed text -> first mouth-open frame", results["text_frame"]),
             row("typed text -> first avatar audio", results["text_audio"]),
             row(f"typed text, drafted {DRAFT_LEAD_S:g} s before Enter -> first mouth-open frame",
                 results["text_frame_draft"]),
             row(f"typed text, drafted {DRAFT_LEAD_S:g} s before Enter -> first avatar audio",
                 results["text_audio_draft"]),
             row("barge-in: speech onset -> avatar audio stops", results["barge_in"]),
             row("barge-in, server: onset in the received audio -> cut tick", results["barge_in_server"])]
    server = results["server_latency"]
    for key in ("asr_ms", "llm_first_ms", "tts_first_ms"):
        values = [e[key] for e in server if e.get(key) is not None]
        lines.append(row(f"server: {key[:-3]} (spoken turns)", values))
    lines += ["", f"Sustained received fps (one session, spoken turns): "
                  f"{', '.join(f'{v:.2f}' for v in results['fps'])}; p95 gap between frames "
                  f"{', '.join(f'{v:.0f}' for v in results['frame_gap_p95'])} ms.",
              f"Server CPU per session during spoken turns: "
              f"{', '.join(f'{100 * v:.0f}%' for v in results['cpu_share'])} of one core.",
              "Sessions at once, slowest session's received fps (alive between turns / all answering at once): "
              + "; ".join(f"{n}: {idle:.1f} / {talking:.1f}" for n, idle, talking in results["capacity"]) + "."]
    if "cycles_after" in results:
        (rss0, th0), (rss1, th1) = results["cycles_before"], results["cycles_after"]
        lines.append(f"{args.cycles} connect/disconnect cycles: server RSS {rss0:.0f} -> {rss1:.0f} MB, threads "
                     f"{th0} -> {th1}, sessions left running {results['sessions_after']}.")
    return "\n".join(lines) + "\n"


async def main_async(args) -> str:
    results: dict = {k: [] for k in ("speech_audio", "speech_frame", "text_frame", "text_audio",
                                      "text_frame_draft", "text_audio_draft", "barge_in", "barge_in_server", "server_latency", "cpu_share", "fps", "frame_gap_p95", "capacity")}
    load_before = os.getloadavg()[0]
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    server = Server(free_port(), data_dir, args.max_sessions, fast_llm_server() if args.fast_llm else None)
    parts = set(args.only.split(","))
    try:
        ready_s = server.wait_ready()
        print(f"server ready in {ready_s:.1f} s", flush=True)
        questions = (QUESTIONS * 3)[: args.turns]
        if "spoken" in parts:
            print("spoken turns", flush=True)
            await spoken_turns(server, questions, results)
        if "typed" in parts:
            print("typed turns", flush=True)
            await typed_turns(server, questions, results)
        if "drafted" in parts:
            print("typed turns, drafted", flush=True)
            await typed_turns(server, questions, results, drafted=True)
        if "barge" in parts:
            print("barge-in", flush=True)
            await barge_ins(server, args.barge_ins, results)
        if "capacity" in parts:
            print("capacity", flush=True)
            await capacity(server, list(range(1, args.max_sessions + 1)), results)
        if args.cycles and "cycles" in parts:
            print("cycles", flush=True)
            await cycles(server, args.cycles, results)
    finally:
        server.stop()
    return report(results, args, ready_s, load_before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--barge-ins", type=int, default=10)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--max-sessions", type=int, default=5)
    parser.add_argument("--data-dir", default="/tmp/genhuman-bench-live")
    parser.add_argument("--fast-llm", action="store_true",
                        help="answer with a local instant OpenAI-compatible server instead of the embedded model")
    parser.add_argument("--only", default="spoken,typed,drafted,barge,capacity,cycles", help="parts to run, comma separated")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "live.md"))
    args = parser.parse_args()
    text = asyncio.run(main_async(args))
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
