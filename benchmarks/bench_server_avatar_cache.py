"""Server avatar cache benchmark: one portrait, 10 videos through the HTTP API, with and
without the server's cache of prepared avatars.

    .venv/bin/python benchmarks/bench_server_avatar_cache.py [--videos 10] [--seconds 2]

The app runs in-process (FastAPI TestClient, one worker, lite engine). The portrait is
examples/astronaut.png, the speech the first ``--seconds`` of examples/speech.wav. Each
video is submitted and waited for before the next, so every figure is one video's
latency. "off" is the server setting ``avatar_cache=0``: each job prepares its avatar
inside ``engine.animate`` (face mesh + renderer set-up), and the upload check runs face
detection on every submission. A warm-up job (not counted) loads the models first; the
first video of each run is shown apart. The machine may be busy: the CPU time of the
process (and its children) per video (the app runs in-process) is printed next to the wall time, and the
figures are medians over ``--rounds`` alternating on/off runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children (e.g. an encoder)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run(cache: int, videos: int, image: bytes, audio: bytes, data_dir: Path) -> list[dict]:
    from fastapi.testclient import TestClient

    from genhuman.server.app import create_app
    from genhuman.server.settings import ServerSettings

    settings = ServerSettings(data_dir=data_dir, workers=1, default_engine="lite", avatar_cache=cache)
    rows = []
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        for _ in range(videos):
            started, cpu_started = time.perf_counter(), cpu_seconds()
            r = client.post("/v1/jobs", files={"image": ("astronaut.png", image), "audio": ("speech.wav", audio)})
            submitted = time.perf_counter()
            if r.status_code != 202:
                sys.exit(f"submission refused: {r.status_code} {r.text}")
            job_id = r.json()["id"]
            while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
                time.sleep(0.01)
            done, cpu = time.perf_counter(), cpu_seconds() - cpu_started
            if job["status"] != "succeeded":
                sys.exit(f"job failed: {job['error']}")
            rows.append({"total": done - started, "cpu": cpu, "submit": submitted - started, "run": job["timings"]["run"],
                         "prepare": job["timings"].get("prepare_avatar", 0.0),
                         "face": job["timings"].get("face", 0.0), "cache": job["result"].get("avatar_cache", "-"),
                         "frames": job["result"]["frames"], "timings": job["timings"]})
        stats = client.get("/healthz").json()["avatar_cache"]
    rows[-1]["stats"] = stats
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of examples/speech.wav")
    parser.add_argument("--rounds", type=int, default=2, help="on/off runs, alternating order (noise)")
    args = parser.parse_args()

    from genhuman.media import SAMPLE_RATE, load_audio, save_wav

    results: dict[str, list[list[dict]]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        speech = Path(tmp) / "speech.wav"
        save_wav(speech, load_audio(EXAMPLES / "speech.wav")[: int(args.seconds * SAMPLE_RATE)])
        image, audio = (EXAMPLES / "astronaut.png").read_bytes(), speech.read_bytes()
        run(0, 1, image, audio, Path(tmp) / "warm-up")  # imports and model loads, not counted
        for r in range(args.rounds):
            for label in (("on", "off") if r % 2 == 0 else ("off", "on")):
                results[label].append(run(16 if label == "on" else 0, args.videos, image, audio,
                                          Path(tmp) / f"data-{label}-{r}"))

    print(f"\n{args.videos} videos of one portrait (examples/astronaut.png, 512x512), "
          f"{args.seconds:g} s of speech each, lite engine, 1 worker, in-process API, {args.rounds} round(s)\n")
    print(f"{'cache':5} {'round':>5} {'video':>5} {'total s':>8} {'cpu s':>6} {'submit s':>9} {'run s':>7} "
          f"{'avatar s':>9} {'avatar':>7}")
    for label, runs in results.items():
        for r, rows in enumerate(runs, 1):
            for i, row in enumerate(rows, 1):
                avatar = row["prepare"] if label == "on" else row["face"]  # off: prepared inside animate
                print(f"{label:5} {r:5d} {i:5d} {row['total']:8.3f} {row['cpu']:6.3f} {row['submit']:9.3f} {row['run']:7.3f} "
                      f"{avatar:9.3f} {row['cache']:>7}")
    print()
    summary, cpu = {}, {}
    for label, runs in results.items():
        first = [rows[0] for rows in runs]
        rest = [row for rows in runs for row in rows[1:]]
        avatar_key = "prepare" if label == "on" else "face"
        summary[label] = statistics.median(r["total"] for r in rest)
        cpu[label] = statistics.median(r["cpu"] for r in rest)
        print(f"cache {label:3}: video 1: {statistics.median(r['total'] for r in first):.3f} s; videos 2-{args.videos} "
              f"(median of {len(rest)}): {summary[label]:.3f} s per video = submit "
              f"{statistics.median(r['submit'] for r in rest):.3f} s + run {statistics.median(r['run'] for r in rest):.3f} s "
              f"(avatar {statistics.median(r[avatar_key] for r in rest):.3f} s); mean of all "
              f"{len(rest) + len(first)}: {statistics.mean(r['total'] for rows in runs for r in rows):.3f} s; "
              f"CPU time {cpu[label]:.3f} s per video (median)")
    for label, runs in results.items():
        rest = [row for rows in runs for row in rows[1:]]
        stages = [k for k in ("prepare_avatar", "load", "face", "speech", "render", "encode") if k in rest[0]["timings"]]
        print(f"cache {label:3}: job stages (median s): " + ", ".join(
            f"{k} {statistics.median(r['timings'].get(k, 0.0) for r in rest):.3f}" for k in stages))
    print(f"cache stats (on, last run): {results['on'][-1][-1]['stats']}")
    print(f"repeated portrait, per video: wall {summary['off']:.3f} s -> {summary['on']:.3f} s "
          f"({(summary['off'] - summary['on']) * 1000:+.0f} ms saved), CPU {cpu['off']:.3f} s -> {cpu['on']:.3f} s "
          f"({(cpu['off'] - cpu['on']) * 1000:+.0f} ms saved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
