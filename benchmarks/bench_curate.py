"""Curation on a synthetic set with known truth: confusion table per stage, throughput with
1 and 2 Ray workers (and in-process), peak RSS, and (``--ray-address``) the same run on a
running cluster giving the same manifest.

    .venv/bin/python benchmarks/bench_curate.py --work /tmp/bench_curate --videos 6
    ray start --head --num-cpus 2 --include-dashboard=false
    .venv/bin/python benchmarks/bench_curate.py --work /tmp/bench_curate --videos 6 --ray-address auto
    ray stop

Each video holds one shot of every variant of genhuman.curate.synthetic (10 shots, hard
cuts every 56 frames), so ``--videos 6`` gives 60 segments of 2 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOT_FRAMES = 56


def bench_config():
    from genhuman.curate import CurateConfig

    config = CurateConfig()
    config.segments.length_s = config.segments.min_length_s = 2.0
    config.output.size = 256
    return config


class PeakRSS:
    """Peak of the summed RSS of this process and all its descendants (Ray's raylet and
    workers when Ray runs inside the process), sampled every 0.2 s."""

    def __init__(self):
        import psutil

        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            total = 0
            for proc in [self.process, *self.process.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def build_set(work: Path, videos: int):
    from genhuman.curate import synthetic

    base = synthetic.Base.load(synthetic.render_base(work / "base.mp4", ROOT / "examples/astronaut.png",
                                                     ROOT / "examples/speech.wav"))
    looks = synthetic.LookDraw(0)
    truth = {}
    for v in range(videos):
        path = work / "raw" / f"talk{v:02d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        truth[str(path)] = synthetic.build_video(path, base, list(synthetic.VARIANTS), SHOT_FRAMES, seed=v + 1,
                                                 looks=looks)
    return truth


def run(label: str, source: str, out: Path, **kwargs):
    from genhuman.curate import curate
    from genhuman.curate.pipeline import remove_outputs

    remove_outputs(out)
    with PeakRSS() as rss:
        started = time.perf_counter()
        result = curate(source, out, bench_config(), progress=False, **kwargs)
        seconds = time.perf_counter() - started
    video_s = sum(r["duration_s"] for r in result.rows)
    print(f"{label:<28} {len(result.rows):4d} segments  workers {result.workers}  {seconds:7.1f} s  "
          f"{len(result.rows) / seconds:6.3f} segments/s  {video_s / seconds:6.3f} h video/h  "
          f"peak RSS {rss.peak / 2**30:5.2f} GiB  (plan {result.timings['plan_s']:.1f} s, "
          f"segments {result.timings['analyze_s']:.1f} s)")
    return result, seconds


def confusion(result, truth) -> None:
    from genhuman.curate import synthetic
    from genhuman.curate.resume import read_json, state_dir

    variant_of = {}
    cut_errors, cuts_found, cuts_true = [], 0, 0
    for entry in result.inputs:
        shots = truth[entry["input_uri"]]
        plan = read_json(state_dir(result.out_dir, entry["input_id"]) / "plan.json") or {"cuts": []}
        true_cuts = [s.start for s in shots][1:]
        cuts_true += len(true_cuts)
        for cut in plan["cuts"]:
            nearest = min(true_cuts, key=lambda c: abs(c - cut))
            cut_errors.append(abs(nearest - cut))
            cuts_found += 1
    for row in result.rows:
        shots = truth[row["input_uri"]]
        variant_of[row["segment_id"]] = next(s.variant for s in shots if s.start <= row["start_frame"] < s.stop)
    print(f"\nshot cuts: {cuts_found} found for {cuts_true} true; largest error {max(cut_errors)} frames; "
          f"within +-1: {sum(e <= 1 for e in cut_errors)}/{cuts_found}")
    stages = ["luminance", "blur", "motion", "face", "speech", "lipsync", "dedup"]
    print("\nper stage (positive = rejected; judged only where the variant's truth names the stage)")
    print(f"{'stage':<10} {'TP':>4} {'FN':>4} {'FP':>4} {'TN':>4}   judged on")
    for stage in stages:
        tp = fn = fp = tn = 0
        judged = set()
        for row in result.rows:
            expected = synthetic.TRUTH[variant_of[row["segment_id"]]].get(stage)
            if expected is None:
                continue
            judged.add(variant_of[row["segment_id"]])
            rejected, should = not row[f"pass_{stage}"], not expected
            tp += rejected and should
            fn += (not rejected) and should
            fp += rejected and not should
            tn += (not rejected) and not should
        print(f"{stage:<10} {tp:4d} {fn:4d} {fp:4d} {tn:4d}   {', '.join(sorted(judged))}")
    kept_true = {"clean", "shifted"}
    tp = sum(1 for r in result.rows if r["kept"] and variant_of[r["segment_id"]] in kept_true)
    fp = sum(1 for r in result.rows if r["kept"] and variant_of[r["segment_id"]] not in kept_true)
    fn = sum(1 for r in result.rows if not r["kept"] and variant_of[r["segment_id"]] in kept_true)
    print(f"kept: {tp} right, {fp} kept wrongly, {fn} dropped wrongly (of {len(result.rows)})")
    lags = [r["lipsync_best_lag"] for r in result.rows if variant_of[r["segment_id"]] == "shifted"]
    clean = [r["lipsync_best_lag"] for r in result.rows if variant_of[r["segment_id"]] == "clean"]
    print(f"measured lag: shifted (truth +10) {sorted(lags)}; clean (truth 0) {sorted(clean)}")
    by_reason: dict[str, int] = {}
    for r in result.rows:
        by_reason[r["rejected_by"] or "kept"] = by_reason.get(r["rejected_by"] or "kept", 0) + 1
    print("first rejecting stage:", ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items())))


def same_manifest(a: Path, b: Path) -> bool:
    import pyarrow.parquet as pq

    x, y = pq.read_table(a).to_pandas(), pq.read_table(b).to_pandas()
    differing = [c for c in x.columns if not x[c].equals(y[c])]
    print(f"manifests {a.parent.name} vs {b.parent.name}: {'identical' if not differing else differing}")
    return not differing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_curate"))
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--scaling-videos", type=int, default=2, help="videos in the 1- and 2-worker runs")
    parser.add_argument("--ray-address", default=None, help="also run through this cluster and compare")
    parser.add_argument("--skip", nargs="*", default=[], choices=["local", "scaling"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    import cv2
    import pyarrow
    import ray
    import scenedetect

    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f}  python {platform.python_version()}  ray {ray.__version__}  "
          f"scenedetect {scenedetect.__version__}  pyarrow {pyarrow.__version__}  opencv {cv2.__version__}")
    args.work.mkdir(parents=True, exist_ok=True)
    truth = build_set(args.work, args.videos)
    listing = args.work / "all.txt"
    listing.write_text("\n".join(truth) + "\n")
    subset = args.work / "subset.txt"
    subset.write_text("\n".join(list(truth)[:args.scaling_videos]) + "\n")
    print(f"set: {args.videos} videos, {sum(len(t) for t in truth.values())} shots\n")
    if "local" not in args.skip:
        local, _ = run("local (--no-ray)", str(listing), args.work / "out_local", use_ray=False)
        confusion(local, truth)
        print()
    if "scaling" not in args.skip:
        run("local subset (--no-ray)", str(subset), args.work / "out_sub_local", use_ray=False)
        for workers in (1, 2):
            run(f"ray in-process, {workers} worker(s)", str(subset), args.work / f"out_ray{workers}",
                use_ray=True, workers=workers)
        same_manifest(args.work / "out_sub_local" / "manifest.parquet", args.work / "out_ray1" / "manifest.parquet")
        same_manifest(args.work / "out_sub_local" / "manifest.parquet", args.work / "out_ray2" / "manifest.parquet")
    if args.ray_address:
        run(f"ray --ray-address {args.ray_address}", str(listing), args.work / "out_cluster", use_ray=True,
            ray_address=args.ray_address, workers=2)
        if (args.work / "out_local" / "manifest.parquet").is_file():
            same_manifest(args.work / "out_local" / "manifest.parquet",
                          args.work / "out_cluster" / "manifest.parquet")


if __name__ == "__main__":
    main()
