"""Inputs and decoding: INPUT -> a list of URIs, each made local (fsspec), probed and decoded
with PyAV, frames downscaled for scoring, the audio held once as 16 kHz float32 on disk."""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import cv2
import numpy as np

from genhuman.errors import InputError
from genhuman.media import SAMPLE_RATE, open_audio

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


def is_url(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def resolve_inputs(spec: str) -> list[str]:
    """A folder (its videos, sorted), a glob, a text file of paths/URLs (one a line, # comments),
    a single video or a single URL."""
    if is_url(spec):
        return [spec]
    path = Path(spec)
    if path.is_dir():
        return sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    if path.is_file() and path.suffix.lower() in (".txt", ".lst", ".list"):
        base = path.parent
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return [line if is_url(line) or Path(line).is_absolute() else str(base / line)
                for line in lines if line and not line.startswith("#")]
    if path.is_file():
        return [str(path)]
    matches = sorted(glob.glob(spec, recursive=True))
    if matches:
        return [m for m in matches if Path(m).is_file()]
    raise InputError(f"input {spec!r} is not a folder, a video, a list of paths, a glob that matches or a URL")


def input_id(uri: str) -> str:
    """Stable, file-system-safe id: the name's stem and a hash of the whole URI."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(uri.split("?")[0]).stem)[:40] or "input"
    return f"{stem}-{hashlib.sha1(uri.encode('utf-8')).hexdigest()[:10]}"


def localize(uri: str, folder: Path) -> Path:
    """A local path for ``uri``: itself when it is local, else a copy fetched through fsspec."""
    if not is_url(uri):
        path = Path(uri.removeprefix("file://"))
        if not path.is_file():
            raise InputError(f"file not found: {uri!r}")
        return path
    import fsspec

    suffix = Path(uri.split("?")[0]).suffix or ".mp4"
    target = folder / f"source{suffix}"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".source{suffix}.partial"
    try:
        with fsspec.open(uri, "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except Exception as exc:  # fsspec raises per-protocol types; any failure means "cannot open"
        partial.unlink(missing_ok=True)
        raise InputError(f"cannot open {uri!r}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                         ) from None
    os.replace(partial, target)
    return target


@dataclass(frozen=True)
class SourceInfo:
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    bitrate_kbps: float
    has_audio: bool


def probe(path: Path) -> SourceInfo:
    """Stream facts from the headers (frames counted by demuxing when absent)."""
    if path.stat().st_size == 0:
        raise InputError(f"{str(path)!r} is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{str(path)!r} has no video track")
            video = container.streams.video[0]
            fps = float(video.average_rate or video.guessed_rate or 0.0)
            frames = video.frames or sum(1 for packet in container.demux(video) if packet.size)
            duration = frames / fps if fps else 0.0
            bitrate = float(video.bit_rate or 0) or (path.stat().st_size * 8 / duration if duration else 0.0)
            width, height = video.codec_context.width, video.codec_context.height
            has_audio = bool(container.streams.audio)
    except (av.FFmpegError, OSError, ValueError):
        raise InputError(f"{str(path)!r} is not a readable video file") from None
    if frames <= 0 or fps <= 0 or width <= 0:
        raise InputError(f"{str(path)!r} has no decodable video frames")
    return SourceInfo(width, height, fps, int(frames), duration, bitrate / 1000.0, has_audio)


def scale_to(frame: np.ndarray, max_side: int) -> np.ndarray:
    height, width = frame.shape[:2]
    factor = max_side / max(height, width)
    if factor >= 1.0:
        return frame
    size = (max(2, round(width * factor)), max(2, round(height * factor)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class FrameReader:
    """Frames ``start <= i < stop`` as RGB uint8 (optionally downscaled); ``corrupt`` counts
    packets FFmpeg could not decode and frames missing from the expected range."""

    def __init__(self, path: Path, fps: float, start: int = 0, stop: Optional[int] = None,
                 max_side: Optional[int] = None):
        self.path, self.fps, self.start, self.stop, self.max_side = path, fps, start, stop, max_side
        self.corrupt = 0
        self.read = 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        container = av.open(str(self.path))
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            time_base = stream.time_base or Fraction(1, 90000)
            if self.start > 0:  # seek to the keyframe before start, then decode forward
                container.seek(int(max(0.0, (self.start - 1) / self.fps) / time_base), stream=stream,
                               backward=True)
            index = -1
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.FFmpegError:
                    self.corrupt += 1
                    continue
                for frame in decoded:
                    index = (round(float(frame.pts * time_base) * self.fps) if frame.pts is not None
                             else index + 1)
                    if index < self.start:
                        continue
                    if self.stop is not None and index >= self.stop:
                        return
                    image = frame.to_ndarray(format="rgb24")
                    self.read += 1
                    yield index, scale_to(image, self.max_side) if self.max_side else image
        finally:
            container.close()
            if self.stop is not None:
                self.corrupt += max(0, (self.stop - self.start) - self.read)


def extract_audio(path: Path, target: Path, has_audio: bool) -> int:
    """The whole audio track as 16 kHz mono float32 samples in ``target`` (raw); returns the count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    count = 0
    with open(partial, "wb") as out:
        if has_audio:
            try:
                with open_audio(path, SAMPLE_RATE) as clip:
                    for chunk in clip.chunks(10.0):
                        out.write(np.asarray(chunk, np.float32).tobytes())
                        count += len(chunk)
            except InputError as exc:
                log.warning("%s: audio unreadable (%s); treated as silent", path, exc)
    os.replace(partial, target)
    return count


def audio_window(audio_file: Path, start_s: float, stop_s: float) -> np.ndarray:
    """Samples of [start_s, stop_s) from the raw file; zeros outside the audio."""
    start, stop = round(start_s * SAMPLE_RATE), round(stop_s * SAMPLE_RATE)
    out = np.zeros(max(0, stop - start), np.float32)
    size = audio_file.stat().st_size // 4 if audio_file.is_file() else 0
    if size == 0 or stop <= 0 or start >= size:
        return out
    data = np.memmap(audio_file, dtype=np.float32, mode="r", shape=(size,))
    lo, hi = max(0, start), min(size, stop)
    out[lo - start:hi - start] = data[lo:hi]
    return out
