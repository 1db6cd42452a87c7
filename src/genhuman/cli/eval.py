"""``genhuman eval lipsync OUT.mp4`` and ``genhuman eval identity PORTRAIT OUT.mp4``."""

from __future__ import annotations

import argparse
from pathlib import Path

from genhuman.cli.common import int_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="measure an output video (lip sync, identity)",
                       description="Measure a talking-head video.")
    metrics = p.add_subparsers(dest="metric", metavar="METRIC", required=True)
    lip = metrics.add_parser("lipsync", help="mouth opening vs loudness, from the video alone",
                             description="Correlate the inner-lip opening (face mesh) with the loudness of "
                                         "the video's own audio track, and count closed mouths in silences.")
    lip.add_argument("video", type=Path, help="an MP4 with a face and an audio track")
    lip.add_argument("--portrait", type=Path, default=None,
                     help="the portrait the video was made from: its own mouth counts as closed too "
                          "(a photo that smiles with parted lips)")
    lip.add_argument("--face-index", type=int_range(0, 63), default=0, help="face used in the portrait")
    lip.add_argument("--json", action="store_true", help="print JSON instead of text")
    lip.set_defaults(func=run_lipsync)
    ident = metrics.add_parser("identity", help="upper-face PSNR against the portrait, head motion undone")
    ident.add_argument("portrait", type=Path, help="the portrait the video was made from")
    ident.add_argument("video", type=Path, help="the output MP4")
    ident.add_argument("--face-index", type=int_range(0, 63), default=0, help="face used in the portrait")
    ident.add_argument("--json", action="store_true", help="print JSON instead of text")
    ident.set_defaults(func=run_identity)


def run_lipsync(args: argparse.Namespace) -> int:
    from genhuman.eval.lipsync import measure_lipsync

    report = measure_lipsync(args.video, args.portrait, args.face_index)
    print(report.to_json() if args.json else report.to_text())
    return 0


def run_identity(args: argparse.Namespace) -> int:
    from genhuman.eval.identity import upper_face_psnr

    report = upper_face_psnr(args.portrait, args.video, face_index=args.face_index)
    print(report.to_json() if args.json else report.to_text())
    return 0
