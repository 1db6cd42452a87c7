"""Memory of MediaPipe face graphs when many threads detect faces (a server's threads).

    python benchmarks/bench_mediapipe_graphs.py --threads 32 --rounds 2

Each setting runs in a fresh process: ``--threads`` threads each call ``detect_faces`` on
a two-face image ``--rounds`` times, with the graph pool at the default size (pooled) and
at one graph set per thread (what the thread-local graphs before issue 9 built). Prints
RSS before and after, the graphs built per kind and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, threading, time
import numpy as np
from genhuman.face import _mediapipe, detect_faces
from genhuman.media import load_image

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

threads, rounds, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
_mediapipe.set_pool_size(size or None)
portrait = load_image(sys.argv[4])
pair = np.concatenate([portrait, portrait[:, ::-1]], axis=1)
before = rss_mb()
def work():
    for _ in range(rounds):
        assert len(detect_faces(pair)) == 2
started = time.perf_counter()
pool = [threading.Thread(target=work) for _ in range(threads)]
[t.start() for t in pool]; [t.join() for t in pool]
print(json.dumps({"rss_before_mb": before, "rss_after_mb": rss_mb(), "seconds": time.perf_counter() - started,
                  "pool_size": _mediapipe.pool_size(), "graphs": _mediapipe.graphs_built()}))
"""


def run(threads: int, rounds: int, size: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(rounds), str(size),
                          str(ROOT / "examples" / "astronaut.png")], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import mediapipe

    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}, mediapipe {mediapipe.__version__}")
    print(f"# {args.threads} threads x {args.rounds} detect_faces calls on a 1024x512 two-face image")
    print("| graphs | pool size | RSS before (MB) | RSS after (MB) | growth (MB) | graphs built per kind | wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for label, size in (("pooled (default)", 0), ("one set per thread", args.threads)):
        r = run(args.threads, args.rounds, size)
        built = ", ".join(f"{k} {v}" for k, v in sorted(r["graphs"].items()))
        print(f"| {label} | {r['pool_size']} | {r['rss_before_mb']:.0f} | {r['rss_after_mb']:.0f} | "
              f"{r['rss_after_mb'] - r['rss_before_mb']:.0f} | {built} | {r['seconds']:.1f} |")
        time.sleep(0.5)


if __name__ == "__main__":
    main()
