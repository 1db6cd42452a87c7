"""Fuzz figures for the pose and checkpoint loaders (issue 9, item 2), for the closing note.

    .venv/bin/python benchmarks/fuzz_loaders.py [--pose 1000] [--weights 200] [--seed 1] [--src DIR]

The same harness as tests/fuzz: seeded byte flips, truncation and forged opcodes applied
to valid files made here (V2 pose ``.npy``, V1 pose ``.pkl``/``.npy``, zip ``.pth``, legacy
``.bin``, ``.safetensors``, whisper ``.pt``); each file is loaded by GenHuman's own loader in
a worker subprocess that is restarted after a crash or a hang. ``--src`` points the workers
at another ``genhuman`` source tree (e.g. an older commit from ``git archive``) to compare.
Prints the machine, the versions, and per batch: files tried, loaded, refused, crashed,
hung, ran code (the canary file appeared), other errors (not an InputError).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py, this script's folder)
from tests.fuzz.harness import pose_cases, run_batch, weight_cases  # noqa: E402


def versions() -> str:
    import numpy
    import safetensors
    import torch
    import transformers

    return (f"python {platform.python_version()}, numpy {numpy.__version__}, torch {torch.__version__}, "
            f"safetensors {safetensors.__version__}, transformers {transformers.__version__}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pose", type=int, default=1000, help="mutated pose files (60%% V2, 40%% V1)")
    parser.add_argument("--weights", type=int, default=200, help="mutated checkpoints")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--src", type=Path, help="genhuman source tree to test (default: this checkout's src)")
    parser.add_argument("--per-file", type=float, default=5.0, help="seconds before a file counts as hung")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"versions: {versions()}")
    print(f"loaders: {args.src or ROOT / 'src'}, seed {args.seed}, {args.per_file:g} s per file")
    total: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work, canary = Path(tmp), Path(tmp) / "canary"
        v2 = args.pose * 6 // 10
        batches = [("pose_v2", pose_cases("pose_v2", v2, args.seed, work / "v2", canary)),
                   ("pose_v1", pose_cases("pose_v1", args.pose - v2, args.seed + 1, work / "v1", canary))]
        weights = weight_cases(args.weights, args.seed + 2, work / "weights", canary)
        batches += [("weights", [p for p in weights if p.suffix != ".pt"]),
                    ("whisper", [p for p in weights if p.suffix == ".pt"])]
        for kind, cases in batches:
            started = time.monotonic()
            result = run_batch(kind, cases, canary, per_file_s=args.per_file, src=args.src)
            print(f"{kind:8s} {result.summary()}  ({time.monotonic() - started:.1f} s)")
            for failure in result.failures[:10]:
                print(f"    {failure}")
            for key, value in result.counts.items():
                total[key] = total.get(key, 0) + value
        print(f"total    tried {sum(total.values())}, loaded {total.get('loaded', 0)}, "
              f"refused {total.get('refused', 0)}, crashed {total.get('crashed', 0)}, hung {total.get('hung', 0)}, "
              f"ran code {total.get('ran_code', 0)}, other errors {total.get('error', 0)}; "
              f"canary file exists: {canary.exists()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
