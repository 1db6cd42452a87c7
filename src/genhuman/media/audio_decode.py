"""Audio decoding that cannot take the process down with it.

PyAV 18 frees a channel layout twice when FFmpeg describes it channel by channel (a
"custom order" layout: AIFF or CAF with 8 channels, an MP4 ``chan`` atom, an AAC program
config, Opus ambisonics): the process aborts with "double free or corruption" on the first
decoded frame, and even reading ``stream.codec_context.layout`` triggers it. So the only
containers decoded in this process are those whose demuxer and decoder only ever make plain
channel-mask layouts: WAV with PCM samples, FLAC and MP3. Everything else is decoded by this
file run as a child process (``python audio_decode.py PATH RATE MAX_SECONDS``) that streams
16 kHz mono float32 to its stdout: a crash there is a one-line InputError here.

The same :func:`decode` runs in both places, so the samples are the same either way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional

import av
import numpy as np

from genhuman.errors import InputError

# Outside this a header is lying or the file is not speech: at 1 Hz a few kilobytes would
# resample to hours of audio.
MIN_RATE, MAX_RATE = 4000, 768000
# (container, codec prefix) pairs whose layouts are always channel masks (see above).
IN_PROCESS = (("wav", "pcm_"), ("flac", "flac"), ("mp3", "mp3"))
_EXIT_INPUT_ERROR = 3
_CHILD_SLICE = 1 << 15  # float32 samples per read from the child's pipe


def open_container(path: Path, name: str):
    try:
        return av.open(str(path))
    except PermissionError:
        raise InputError(f"cannot read audio {name}: permission denied") from None
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise InputError(f"{name} is not a readable audio or video file") from None


def decode(container, sample_rate: int, max_seconds: float, name: str) -> Iterator[np.ndarray]:
    """Mono float32 pieces at ``sample_rate``, clipped to [-1, 1], from the first audio stream."""
    if not container.streams.audio:
        raise InputError(f"{name} has no audio track")
    stream = container.streams.audio[0]
    if stream.codec_context is None:  # FFmpeg has no decoder for what the header names
        raise InputError(f"audio {name} uses a codec or sample format that cannot be decoded")
    _check_rate(stream.codec_context.sample_rate, name)
    # Packed float, channels kept: mixed to mono by the mean below (FFmpeg's own downmix
    # scales stereo by 1/sqrt(2) per channel, which can clip). Packed, because PyAV 18
    # reports one plane too many for 8-channel planar audio and to_ndarray() then reads
    # past the end (a segfault); a packed frame has one plane, read with an exact count.
    resampler = av.AudioResampler(format="flt", rate=sample_rate)
    heard = 0.0  # seconds of input decoded: stop early when over the limit
    produced = False
    try:
        for frame in container.decode(stream):
            _check_rate(frame.sample_rate, name)
            heard += frame.samples / frame.sample_rate
            if heard > max_seconds + 1.0:
                raise InputError(f"{name} is too long; the limit is {max_seconds:.0f} s")
            for out in resampler.resample(frame):
                produced = True
                yield _checked_mono(out, name)
        for out in resampler.resample(None):
            yield _checked_mono(out, name)
    except InputError:
        raise
    except (av.FFmpegError, ValueError) as exc:
        if not produced:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise InputError(f"audio {name} is corrupt and could not be decoded ({reason})") from None
        # A damaged tail: keep what decoded, as players do.


def safe_in_process(container) -> bool:
    """True when this container and its first audio codec cannot make a custom layout."""
    if not container.streams.audio:
        return True  # nothing will be decoded; decode() says so
    context = container.streams.audio[0].codec_context
    if context is None:
        return True
    formats = set(container.format.name.split(","))
    return any(fmt in formats and context.name.startswith(codec) for fmt, codec in IN_PROCESS)


def decode_in_child(path: Path, sample_rate: int, max_seconds: float, name: str,
                    sink: Callable[[np.ndarray], None]) -> None:
    """Run :func:`decode` in a child process, passing each piece to ``sink``."""
    # -S and this process's sys.path: the child finds the same packages without site start-up.
    command = [sys.executable, "-S", str(Path(__file__).resolve()), str(path), str(sample_rate),
               repr(float(max_seconds))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), OMP_NUM_THREADS="1")
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    # A decoder that hangs is killed: generous, decoding runs far faster than real time.
    watchdog = threading.Timer(60.0 + max_seconds / 4.0, child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None and child.stderr is not None
        pending = b""
        while True:
            data = child.stdout.read(_CHILD_SLICE * 4)
            if not data:
                break
            data, pending = pending + data, b""
            usable = len(data) - len(data) % 4
            if usable < len(data):
                pending = data[usable:]
            if usable:
                sink(np.frombuffer(data[:usable], dtype="<f4").astype(np.float32))
        message = child.stderr.read().decode("utf-8", "replace").strip().splitlines()
        code = child.wait()
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
    if code == 0:
        return
    if code == _EXIT_INPUT_ERROR and message:
        raise InputError(message[-1])
    if code < 0 and -code == signal.SIGKILL:
        raise InputError(f"audio {name} took too long to decode")
    raise InputError(f"audio {name} could not be decoded (the decoder failed on it)")


def _check_rate(rate: Optional[int], name: str) -> None:
    if not rate or not MIN_RATE <= rate <= MAX_RATE:
        raise InputError(f"audio {name} declares a sample rate of {rate or 0} Hz; "
                         f"supported: {MIN_RATE:,}-{MAX_RATE:,} Hz")


def _checked_mono(frame, name: str) -> np.ndarray:
    mono = _mono(frame)
    if not np.isfinite(mono).all():
        raise InputError(f"audio {name} contains NaN or infinite samples")
    return np.clip(mono, -1.0, 1.0)


def _mono(frame) -> np.ndarray:
    """A packed float32 frame -> the mean of its channels."""
    channels = max(1, len(frame.layout.channels))
    samples = np.frombuffer(frame.planes[0], dtype=np.float32, count=frame.samples * channels)
    return samples.reshape(-1, channels).mean(axis=1)


def _child_main(argv: list[str]) -> int:
    """The child: decode ``argv[0]`` and write float32 to stdout; an InputError's message is
    the last line on stderr (exit 3)."""
    path, sample_rate, max_seconds = Path(argv[0]), int(argv[1]), float(argv[2])
    name = repr(str(path))
    out = sys.stdout.buffer
    try:
        with open_container(path, name) as container:
            for piece in decode(container, sample_rate, max_seconds, name):
                out.write(piece.astype("<f4").tobytes())
        out.flush()
    except InputError as exc:
        sys.stderr.write(str(exc).replace("\n", " ") + "\n")
        return _EXIT_INPUT_ERROR
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
