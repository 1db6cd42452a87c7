"""``genhuman pose extract VIDEO OUT_DIR`` and ``genhuman pose render POSE_DIR OUT.mp4``."""

from __future__ import annotations

import argparse
from pathlib import Path

from genhuman.cli.common import int_range
from genhuman.paths import check_output


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pose", help="extract or inspect EchoMimic V2 pose folders",
                       description="Pose tools for EchoMimic V2: extract a pose folder ({i}.npy, the "
                                   "official format) from a driving video, or render one to an MP4.")
    cmds = p.add_subparsers(dest="pose_command", metavar="ACTION", required=True)

    ex = cmds.add_parser("extract", help="driving video -> pose folder (MediaPipe, 24 fps)")
    ex.add_argument("video", type=Path, help="driving video with one person, upper body visible")
    ex.add_argument("out_dir", type=Path, help="folder to write 0.npy, 1.npy, ...")
    ex.add_argument("--size", type=int_range(64, 4096), default=768, help="aligned canvas side (default 768)")
    ex.add_argument("--max-frames", type=int_range(1, 10**6), default=None, help="stop after this many frames")
    ex.set_defaults(func=run_extract)

    rd = cmds.add_parser("render", help="pose folder -> MP4 for inspection")
    rd.add_argument("pose_dir", type=Path, help="pose folder (0.npy, 1.npy, ...)")
    rd.add_argument("output", type=Path, help="output .mp4")
    rd.add_argument("--size", type=int_range(64, 4096), default=512, help="video side in pixels (default 512)")
    rd.add_argument("--hands-only", action="store_true",
                    help="the exact V2 control images instead of the full-body debug view")
    rd.add_argument("--fps", type=int_range(1, 120), default=24, help="frames per second (default 24)")
    rd.set_defaults(func=run_render)


def run_extract(args: argparse.Namespace) -> int:
    from genhuman.pose.align import crop_pose, pose_crop
    from genhuman.pose.extract import extract_video_pose
    from genhuman.pose.format import save_pose_dir

    check_output(args.out_dir, {"input video": args.video})
    pose, (height, width) = extract_video_pose(args.video, max_frames=args.max_frames)
    box = pose_crop(pose, height, width)
    aligned = crop_pose(pose, box, height, width, args.size, args.size)
    save_pose_dir(aligned, args.out_dir)
    print(f"wrote {len(aligned)} pose frames ({aligned.seconds:.2f} s at {aligned.fps:g} fps) to {args.out_dir}")
    return 0


def run_render(args: argparse.Namespace) -> int:
    from genhuman.errors import InputError
    from genhuman.media import VideoWriter
    from genhuman.pose.format import load_pose_dir
    from genhuman.pose.render import control_frame, render_debug, scale_draw_params

    if args.output.suffix.lower() != ".mp4":
        raise InputError(f"output must be an .mp4 file, got {str(args.output)!r}")
    check_output(args.output, {"pose folder": args.pose_dir})
    pose = load_pose_dir(args.pose_dir, fps=args.fps)
    with VideoWriter(args.output, fps=args.fps) as writer:
        for i in range(len(pose)):
            frame = (control_frame(pose, i, args.size, args.size,
                                   scale_draw_params(pose.draw_params, args.size, args.size))
                     if args.hands_only else render_debug(pose, i, args.size, args.size))
            writer.write(frame)
    print(f"wrote {args.output} ({len(pose)} frames)")
    return 0

