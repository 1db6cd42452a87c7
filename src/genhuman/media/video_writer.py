"""Streaming MP4 writer: H.264 yuv420p + AAC, frames in one at a time (constant memory).

Safety: it writes ``.<name>.<random>.partial.mp4`` next to the target and renames it on a
clean close, so the target never holds a partial file; on any exception (including
KeyboardInterrupt and ``Cancelled``) the temporary file is deleted.

Sizes: yuv420p needs even width and height, so an odd frame is padded by one pixel
(edge row/column repeated) rather than cropped, keeping every input pixel.

Audio: trimmed or zero-padded to exactly ``frames / fps`` seconds at close, so audio and
video durations match within one frame. It is muxed one second at a time, read from the
array or :class:`~genhuman.media.AudioClip` it was given: no full-length copy is made.
"""

from __future__ import annotations

import logging
import os
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import av
import numpy as np

from genhuman.errors import InputError
from genhuman.media.audio import SAMPLE_RATE
from genhuman.media.audio_clip import AudioClip, Samples

log = logging.getLogger(__name__)

AUDIO_BITRATE = 128_000
AAC_RATE = 48000  # AAC's common rate; the 16 kHz speech is resampled up when muxed


def _video_codec() -> str:
    for name in ("libx264", "h264", "libopenh264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except Exception:
            continue
        if name != "libx264":
            log.warning("libx264 is not in this PyAV build; encoding with %s", name)
        return name
    raise RuntimeError("this PyAV build has no usable video encoder")


class VideoWriter:
    """``with VideoWriter(path, fps, audio=wave) as w: w.write(frame)`` for each RGB uint8 frame.

    ``width``/``height`` may be left None: the first frame fixes them. ``audio`` is mono
    float32 at ``sample_rate``, an array or an AudioClip (or None for a silent video).
    """

    def __init__(self, path: str | Path, fps: float, width: Optional[int] = None,
                 height: Optional[int] = None, audio: Optional[Samples] = None,
                 sample_rate: int = SAMPLE_RATE, crf: int = 18, preset: str = "veryfast"):
        if not 0 < fps <= 240:  # also rejects NaN
            raise InputError(f"fps must be between 0 and 240, got {fps}")
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.width, self.height = width, height
        self.audio: Optional[Samples] = (
            audio if audio is None or isinstance(audio, AudioClip)
            else np.asarray(audio, dtype=np.float32).reshape(-1))
        self.sample_rate = int(sample_rate)
        self.crf, self.preset = crf, preset
        self.frames = 0
        # PyAV's container and streams; Any: its stubs type add_stream's result loosely.
        self._container: Any = None
        self._video: Any = None
        self._audio_stream: Any = None
        self._tmp: Optional[Path] = None

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> "VideoWriter":
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the output folder {str(self.path.parent)!r}: {exc.strerror}") from None
        if self.path.is_dir():
            raise InputError(f"output path is a directory: {str(self.path)!r}")
        # Not mkstemp: its 0600 mode would survive the rename. A short name: a legal long
        # output name must not become an illegal temp name. Created here, not at the first
        # mux, so an unwritable folder is a clear error before any work is done.
        self._tmp = self.path.parent / f".{uuid.uuid4().hex[:12]}.partial.mp4"
        try:
            with open(self._tmp, "xb"):
                pass
            self._container = av.open(str(self._tmp), mode="w", format="mp4")
        except OSError as exc:
            self._tmp.unlink(missing_ok=True)
            raise InputError(f"cannot write {str(self.path)!r}: {exc.strerror or exc}") from None
        except BaseException:  # Ctrl-C or SIGTERM between creating the file and opening it
            self._tmp.unlink(missing_ok=True)
            raise

    def _start_video(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        codec = _video_codec()
        stream = self._container.add_stream(codec, rate=self.fps)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._video = stream
        if self.audio is not None:
            self._audio_stream = self._container.add_stream("aac", rate=AAC_RATE, layout="mono")
            self._audio_stream.bit_rate = AUDIO_BITRATE

    def write(self, frame: np.ndarray) -> None:
        """Encode one HxWx3 uint8 RGB frame."""
        if self._container is None:
            raise RuntimeError("VideoWriter is not open; use it as a context manager")
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be HxWx3 uint8, got {frame.shape} {frame.dtype}")
        height, width = frame.shape[:2]
        if self._video is None:
            self._start_video(self.width or width, self.height or height)
        if (width, height) != (self.width, self.height):
            raise ValueError(f"frame size {width}x{height} differs from the video's {self.width}x{self.height}")
        if width % 2 or height % 2:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames
        video_frame.time_base = 1 / self.fps
        for packet in self._video.encode(video_frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoders, mux the audio and move the file into place."""
        if self._container is None:
            return
        try:
            if self.frames == 0:
                raise ValueError("no frames were written")
            for packet in self._video.encode(None):
                self._container.mux(packet)
            if self.audio is not None:
                self._mux_audio()
            self._container.close()
            self._container = None
            assert self._tmp is not None  # set by open() together with the container
            os.replace(self._tmp, self.path)
            self._tmp = None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written so far; the target path is left untouched."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # the file is being thrown away; its state does not matter
                pass
            self._container = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def _mux_audio(self) -> None:
        if self.audio is None:
            return
        needed = round(self.frames / self.fps * self.sample_rate)
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=AAC_RATE)
        stream = self._audio_stream
        chunk = self.sample_rate  # one second per frame keeps memory flat
        for start in range(0, needed, chunk):
            stop = min(start + chunk, needed)
            piece = np.asarray(self.audio[start:stop], dtype=np.float32)
            if piece.size < stop - start:  # past the end of the audio: silence
                piece = np.concatenate([piece, np.zeros(stop - start - piece.size, np.float32)])
            piece = np.clip(piece, -1.0, 1.0)
            frame = av.AudioFrame.from_ndarray(piece[None], format="flt", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = start
            frame.time_base = Fraction(1, self.sample_rate)
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    self._container.mux(packet)
        for resampled in resampler.resample(None):
            for packet in stream.encode(resampled):
                self._container.mux(packet)
        for packet in stream.encode(None):
            self._container.mux(packet)
