"""Reading videos: stream facts and frames one at a time (constant memory)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from genhuman.errors import InputError


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int
    duration: float  # seconds of video
    has_audio: bool
    audio_duration: float  # seconds of audio; 0.0 without an audio track


def _open(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise InputError(f"video file not found: {str(path)!r}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError):
        raise InputError(f"{str(path)!r} is not a readable video file") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{str(path)!r} has no video track")
    return container


def _stream_seconds(stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return 0.0


def read_video_info(path: str | Path) -> VideoInfo:
    """Width, height, fps, frame count and durations, from the container headers
    (frames are counted by demuxing when the header lacks them)."""
    with _open(path) as container:
        video = container.streams.video[0]
        fps = float(video.average_rate or video.guessed_rate or 0.0)
        frames = video.frames or sum(1 for packet in container.demux(video) if packet.size)
        duration = _stream_seconds(video) or (frames / fps if fps else 0.0)
        audio_duration = _stream_seconds(container.streams.audio[0]) if container.streams.audio else 0.0
        return VideoInfo(width=video.codec_context.width, height=video.codec_context.height, fps=fps,
                         frames=int(frames), duration=duration, has_audio=bool(container.streams.audio),
                         audio_duration=audio_duration)


def iter_video_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Yield each frame as an HxWx3 uint8 RGB array."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")
    finally:
        container.close()
