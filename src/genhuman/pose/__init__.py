"""Pose tools for EchoMimic V2: the official per-frame format, the exact hands-only
rendering, MediaPipe extraction, reference alignment and retargeting, extension to any
length and generation from speech. See docs/pose.md.

MediaPipe is imported only by :mod:`genhuman.pose.extract`, when a detector is built.
"""

from genhuman.pose.align import AlignedReference, CropBox, align_image, align_reference, crop_pose, pose_crop, retarget
from genhuman.pose.extend import extend_pose, max_step
from genhuman.pose.format import PoseSequence, load_pose_dir, save_pose_dir
from genhuman.pose.generate import generate_pose
from genhuman.pose.render import control_frame, control_frames, render_debug, render_hands

__all__ = ["AlignedReference", "CropBox", "PoseSequence", "align_image", "align_reference", "control_frame",
           "control_frames", "crop_pose", "extend_pose", "generate_pose", "load_pose_dir", "max_step", "pose_crop",
           "render_debug", "render_hands", "retarget", "save_pose_dir"]
