"""What every engine's ``animate`` shares: check the output path, open the audio once, split it
into chunks, and write a frame stream to an MP4 with the speech muxed in.

Audio from a file is an :class:`~genhuman.media.AudioClip` (decoded into a temporary file,
read piece by piece), so no step holds the whole waveform: memory does not grow with the
length of the audio. Arrays given by a caller are used as they are.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import numpy as np

from genhuman.engines.base import AnimateResult, Frame
from genhuman.errors import InputError
from genhuman.media import SAMPLE_RATE, AudioClip, Samples
from genhuman.progress import CancelFn, ProgressFn, check_cancel, report


def check_output(output: Union[str, Path], image: object = None, audio: object = None) -> Path:
    """The output as a Path: an .mp4 name the file system can hold that is not one of the
    inputs given as paths (arrays and avatars are not files)."""
    from genhuman.paths import check_output as check_path

    output = Path(output)
    if output.suffix.lower() != ".mp4":
        raise InputError(f"output must be an .mp4 file, got {str(output)!r}")
    check_path(output, {role: Path(source) for role, source in (("input image", image), ("input audio", audio))
                        if isinstance(source, (str, Path))})
    return output


def open_samples(audio: Union[str, Path, np.ndarray]) -> Samples:
    """A path decoded into an AudioClip (close it when done); an array validated, in memory."""
    from genhuman.media import load_audio, open_audio

    return load_audio(audio) if isinstance(audio, np.ndarray) else open_audio(audio)


def close_samples(samples: Samples) -> None:
    if isinstance(samples, AudioClip):
        samples.close()


def audio_chunks(wave: Samples, seconds: float = 1.0) -> Iterator[np.ndarray]:
    """``wave`` in pieces of ``seconds`` (the last one shorter)."""
    if isinstance(wave, AudioClip):
        yield from wave.chunks(seconds)
        return
    step = max(1, int(round(seconds * SAMPLE_RATE)))
    for start in range(0, len(wave), step):
        yield wave[start:start + step]


def write_video(frames: Iterable[Frame], output: Path, fps: float, wave: Samples,
                expected_frames: Optional[int] = None, progress: Optional[ProgressFn] = None,
                should_cancel: Optional[CancelFn] = None, timings: Optional[dict[str, float]] = None,
                started: Optional[float] = None) -> AnimateResult:
    """Write ``frames`` as they come; the temp file is removed if anything fails."""
    from genhuman.media import VideoWriter

    started = time.perf_counter() if started is None else started
    count, width, height = 0, 0, 0
    with VideoWriter(output, fps, audio=wave, sample_rate=SAMPLE_RATE) as writer:
        for frame in frames:
            check_cancel(should_cancel)
            writer.write(frame.image)
            height, width = frame.image.shape[:2]
            count += 1
            if expected_frames and count % 5 == 0:
                report(progress, count / expected_frames, f"frame {count}/{expected_frames}")
        if count == 0:
            raise InputError("the audio is too short to make a single frame")
    report(progress, 1.0, "done")
    timings = dict(timings or {})
    timings["total"] = time.perf_counter() - started
    return AnimateResult(output=output, frames=count, fps=float(fps), width=width, height=height,
                         seconds=count / fps, timings=timings)
