"""``genhuman data curate INPUT OUT_DIR [--config curate.yaml]``: raw videos -> filtered
talking-human clips (25 fps, 16 kHz audio, face-centred crop), a Parquet manifest of every
segment's scores and a report. Ray Data runs the stages, inside this process by default."""

from __future__ import annotations

import argparse
from pathlib import Path

from genhuman.cli.common import int_range


def register(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "curate", help="raw videos -> filtered talking-human clips, manifest and report",
        description="Curate raw footage OpenHumanVid/LatentSync-style: shots, segments, technical, luminance, "
                    "blur, motion, face, speech, lip-sync and near-duplicate filters. A second run skips "
                    "finished inputs; a killed run resumes where it stopped.")
    p.add_argument("input", help="a folder, a glob, a video, a URL or a text file of paths/URLs (fsspec)")
    p.add_argument("out_dir", type=Path, help="output folder: clips/, manifest.parquet, inputs.parquet, report/")
    p.add_argument("--config", type=Path, default=None, help="YAML of stage settings (docs/curate.md)")
    p.add_argument("--no-ray", action="store_true", help="run every stage in this process, one segment at a time")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join a Ray cluster (auto, ray://host:port) instead of starting Ray in this process")
    p.add_argument("--workers", type=int_range(1, 4096), default=None,
                   help="workers per Ray stage (default: as many as the CPUs allow)")
    p.add_argument("--syncnet", type=Path, default=None, metavar="syncnet_v2.model",
                   help="SyncNet weights (joonson/syncnet_python) to add its confidence and offset")
    p.add_argument("--no-report", action="store_true", help="skip the HTML/PNG report")
    p.set_defaults(func=run_curate)


def run_curate(args: argparse.Namespace) -> int:
    from genhuman.curate import CurateConfig, curate
    from genhuman.errors import InputError

    config = CurateConfig.from_yaml(args.config) if args.config else CurateConfig()
    if args.syncnet is not None:
        if not args.syncnet.is_file():
            raise InputError(f"SyncNet weights not found: {str(args.syncnet)!r}")
        config.lipsync.syncnet_weights = str(args.syncnet)
    if args.no_ray and args.ray_address:
        raise InputError("--no-ray and --ray-address exclude each other")
    result = curate(args.input, args.out_dir, config, use_ray=not args.no_ray, ray_address=args.ray_address,
                    workers=args.workers, report=not args.no_report)
    bad = [i for i in result.inputs if i["status"] == "error"]
    hours = sum(r["duration_s"] for r in result.rows) / 3600
    print(f"{len(result.rows)} segments from {len(result.inputs)} inputs: {result.kept} kept, "
          f"{len(result.rows) - result.kept} rejected; {len(bad)} bad inputs; "
          f"{result.processed} segments analyzed in {result.seconds:.1f} s "
          f"({result.processed / max(result.seconds, 1e-9):.2f} segments/s, "
          f"{hours * 3600 / max(result.seconds, 1e-9):.2f} h of video per hour)")
    for entry in bad:
        print(f"  bad input {entry['input_uri']}: {entry['reason']}")
    print(f"manifest: {result.out_dir / 'manifest.parquet'}")
    return 0
