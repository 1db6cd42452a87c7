"""Encode test media in-process with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def sine(freq: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode_audio(path: Path, channels: np.ndarray, rate: int, codec: str, fmt: str | None = None,
                 with_video: bool = False) -> Path:
    """``channels``: (C, N) float32. Writes a file with one audio stream (and a video one)."""
    layout = "mono" if channels.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        video = out.add_stream("libx264", rate=25) if with_video else None  # streams first, then muxing
        if video is not None:
            video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=rate)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(channels.T.reshape(1, -1)), format="flt",
                                           layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if video is not None:
            for i in range(int(channels.shape[1] / rate * 25)):
                picture = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i % 255, np.uint8), format="rgb24")
                picture.pts = i
                for packet in video.encode(picture):
                    out.mux(packet)
            for packet in video.encode(None):
                out.mux(packet)
    return path


def peak_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[np.argmax(spectrum)])
