"""``genhuman data prepare VIDEOS_DIR OUT_DIR --family echomimic|hallo``: talking-head videos ->
the family's training layout (docs/data_prepare.md, :mod:`genhuman.data.layout`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from genhuman.cli.common import int_range


def register(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "prepare", help="talking-head videos -> a family's training layout (frames, masks, audio features)",
        description="Prepare talking-head videos for `genhuman train`: 25 fps face-centred crops at the training "
                    "size (cropped as the family's inference crops), 16 kHz audio, face/lip/union masks from "
                    "the tracked landmarks, the family's audio features (EchoMimic: whisper windows; Hallo: "
                    "wav2vec2 levels) and Hallo's face embedding, with a manifest.jsonl of every video. Videos "
                    "whose frame and audio-feature counts differ by more than 3 are dropped, with the reason. "
                    "A second run reuses finished clips.")
    p.add_argument("videos_dir", type=Path, help="folder of videos (searched recursively: mp4, mov, mkv, avi, webm)")
    p.add_argument("out_dir", type=Path, help="output folder: manifest.jsonl and clips/<clip_id>/")
    p.add_argument("--family", default="echomimic", metavar="echomimic|hallo",
                   help="model family whose crop and features to make (default echomimic)")
    p.add_argument("--size", type=int, default=None,
                   help="training frame side in pixels (default: the family's, 512)")
    p.add_argument("--audio-model", type=Path, default=None, metavar="DIR",
                   help="the family's weights folder holding its audio encoder (EchoMimic: the official or "
                        "converted folder with whisper; Hallo: pretrained_models/ with wav2vec2 and face_analysis)")
    p.add_argument("--workers", type=int_range(1, 256), default=1,
                   help="worker processes on this machine (default 1)")
    p.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    from genhuman.data.prepare import PrepareConfig, prepare

    config = PrepareConfig(family=args.family, size=args.size, audio_model=args.audio_model, workers=args.workers)
    report = prepare(args.videos_dir, args.out_dir, config)
    print(f"{len(report.rows)} videos: {report.kept} kept, {report.dropped} dropped, {report.skipped} reused "
          f"from an earlier run, in {report.seconds:.1f} s")
    for row in report.rows:
        if not row.kept:
            print(f"  dropped {row.clip_id}: {row.reason}")
    print(f"manifest: {report.manifest}")
    return 0
