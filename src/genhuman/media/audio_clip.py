"""Decoded audio held once, outside the process's memory: :class:`AudioClip`.

An hour of 16 kHz float32 is 230 MB; held in memory (and copied at each step) it made peak
memory grow with the length of the audio. A clip keeps its samples in an unlinked temporary
file (nothing is left behind even if the process is killed) and hands out pieces on demand,
read straight into fresh arrays (no mmap): the page cache holds the file, not this process, so
its resident memory stays flat however long the audio is. Float32 is kept (not int16) so
that every sample equals what an in-memory decode gives.

A clip reads like a 1-D float32 array where it matters: ``len(clip)`` and ``clip[a:b]``
(a new array). ``clip.chunks(seconds)`` streams it; ``clip.to_array()`` is for short clips.
"""

from __future__ import annotations

import tempfile
import threading
from typing import Iterator, Optional, Union

import numpy as np

SAMPLE_RATE = 16000  # what every engine takes (genhuman.media.SAMPLE_RATE)
_ITEM = 4  # bytes per float32 sample
_FLUSH = 1 << 16  # samples gathered before one write


class AudioClip:
    """Mono float32 samples at ``sample_rate`` in a temporary file; append, then read."""

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = int(sample_rate)
        self._file = tempfile.TemporaryFile(prefix="genhuman-audio-", buffering=0)
        self._lock = threading.Lock()  # seek + read/write pairs; a clip may be read from two threads
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._n = 0
        self.peak = 0.0  # max |sample|
        self._square_sum = 0.0

    # -- writing -----------------------------------------------------------------------
    def append(self, samples: np.ndarray) -> None:
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        if not samples.size:
            return
        self.peak = max(self.peak, float(np.abs(samples).max()))
        self._square_sum += float(np.dot(samples.astype(np.float64), samples.astype(np.float64)))
        self._pending.append(samples)
        self._pending_n += samples.size
        self._n += samples.size
        if self._pending_n >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            data = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            with self._lock:
                self._file.seek((self._n - self._pending_n) * _ITEM)
                self._write_all(data.data.cast("B"))
            self._pending, self._pending_n = [], 0

    def _write_all(self, view: memoryview) -> None:
        while len(view):
            view = view[self._file.write(view):]

    @classmethod
    def from_array(cls, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> "AudioClip":
        clip = cls(sample_rate)
        step = 1 << 20
        for start in range(0, len(wave), step):
            clip.append(wave[start:start + step])
        return clip

    # -- reading -----------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def seconds(self) -> float:
        return self._n / self.sample_rate

    @property
    def rms(self) -> float:
        return float(np.sqrt(self._square_sum / self._n)) if self._n else 0.0

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` (clamped to the clip) as a new float32 array."""
        self._flush()
        start, stop = max(0, min(start, self._n)), max(0, min(stop, self._n))
        out = np.empty(max(stop - start, 0), dtype=np.float32)
        view = out.data.cast("B")
        with self._lock:
            self._file.seek(start * _ITEM)
            while len(view):
                got = self._file.readinto(view)
                if not got:
                    raise OSError("the temporary audio file is shorter than its clip")
                view = view[got:]
        return out

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("an AudioClip is read by contiguous slices, clip[a:b]")
        start, stop, _ = key.indices(self._n)
        return self.read(start, stop)

    def chunks(self, seconds: float = 1.0) -> Iterator[np.ndarray]:
        """The clip in pieces of ``seconds`` (the last one shorter)."""
        step = max(1, int(round(seconds * self.sample_rate)))
        for start in range(0, self._n, step):
            yield self.read(start, start + step)

    def to_array(self) -> np.ndarray:
        return self.read(0, self._n)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "AudioClip":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AudioClip({self.seconds:.2f} s at {self.sample_rate} Hz)"


# What engines take: samples in memory, or a clip that reads them on demand.
Samples = Union[np.ndarray, AudioClip]


def as_array(samples: Samples, limit: Optional[int] = None) -> np.ndarray:
    """The samples (the first ``limit`` of them) as one float32 array."""
    stop = len(samples) if limit is None else min(limit, len(samples))
    if isinstance(samples, AudioClip):
        return samples.read(0, stop)
    return np.asarray(samples[:stop], dtype=np.float32)
