"""Hand-built WAV files, honest and lying, for the decoder robustness tests.

``riff_wav`` writes the RIFF bytes itself, so a header can claim what the data is not: a data
size larger or smaller than the file, a sample rate or channel count of zero, a format the
samples do not have. ``cases()`` is the table the fuzz test decodes one by one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
_SUBTYPE_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def speech_like(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """(frames, channels) float64 in [-0.8, 0.8]: a 150-300 Hz buzz under a syllable envelope."""
    n = max(int(seconds * rate), 1)
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    pitch = 150.0 + 150.0 * rng.random(channels)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)
    return 0.8 * envelope[:, None] * np.sin(2 * np.pi * t[:, None] * pitch[None, :])


def encode_samples(samples: np.ndarray, fmt: str) -> bytes:
    """Interleaved (frames, channels) floats as WAV sample bytes: u8, s16, s24, s32, f32 or f64."""
    if fmt == "u8":
        return np.clip(np.round(samples * 127.0 + 128.0), 0, 255).astype(np.uint8).tobytes()
    if fmt == "s16":
        return np.round(samples * 32767.0).astype("<i2").tobytes()
    if fmt == "s24":
        ints = np.round(samples * 8388607.0).astype("<i4").reshape(-1, 1).view(np.uint8)
        return ints[:, :3].tobytes()
    if fmt == "s32":
        return np.round(samples * 2147483647.0).astype("<i4").tobytes()
    if fmt == "f32":
        return samples.astype("<f4").tobytes()
    if fmt == "f64":
        return samples.astype("<f8").tobytes()
    raise ValueError(fmt)


BITS = {"u8": 8, "s16": 16, "s24": 24, "s32": 32, "f32": 32, "f64": 64}


def riff_wav(data: bytes, channels: int, rate: int, bits: int, tag: int = PCM,
             data_size: Optional[int] = None, extensible_tag: int = PCM) -> bytes:
    """RIFF/WAVE bytes with a ``fmt `` chunk saying exactly what it is told (true or not)."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align & 0xFFFF, bits)
    if tag == EXTENSIBLE:
        mask = (1 << min(channels, 18)) - 1 if channels <= 18 else 0
        fmt += struct.pack("<HHI", 22, bits, mask) + struct.pack("<H", extensible_tag) + _SUBTYPE_TAIL
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def honest(samples: np.ndarray, rate: int, fmt: str, extensible: bool = False) -> bytes:
    channels = samples.shape[1]
    tag = FLOAT if fmt.startswith("f") else PCM
    if extensible or channels > 2 or BITS[fmt] > 16:
        return riff_wav(encode_samples(samples, fmt), channels, rate, BITS[fmt], EXTENSIBLE, extensible_tag=tag)
    return riff_wav(encode_samples(samples, fmt), channels, rate, BITS[fmt], tag)


@dataclass
class Case:
    name: str
    data: bytes
    valid: bool  # True: must decode to audio; False: must decode or be refused, never crash

    def write(self, folder: Path) -> Path:
        path = folder / f"{self.name}.wav"
        path.write_bytes(self.data)
        return path


def cases() -> list[Case]:
    out: list[Case] = []
    for channels in (1, 2, 3, 5, 6, 7, 8, 9, 12, 16, 24, 32, 48, 64):
        out.append(Case(f"ch{channels}", honest(speech_like(0.3, 16000, channels), 16000, "s16"), True))
    for rate in (8000, 11025, 12345, 22050, 44100, 44101, 48000, 96000, 192000, 384000):
        out.append(Case(f"rate{rate}", honest(speech_like(0.3, rate, 1), rate, "s16"), True))
    for fmt in ("u8", "s16", "s24", "s32", "f32", "f64"):
        for channels in (1, 2, 8):
            out.append(Case(f"{fmt}_ch{channels}", honest(speech_like(0.3, 16000, channels), 16000, fmt), True))
    for fmt in ("s16", "f32"):
        out.append(Case(f"{fmt}_extensible", honest(speech_like(0.3, 16000, 1), 16000, fmt, extensible=True), True))
    good = encode_samples(speech_like(0.5, 16000, 2), "s16")
    out += [
        Case("size_larger_than_file", riff_wav(good, 2, 16000, 16, data_size=len(good) * 50), True),
        Case("size_max", riff_wav(good, 2, 16000, 16, data_size=0xFFFFFFFF), True),
        Case("size_smaller_than_file", riff_wav(good, 2, 16000, 16, data_size=len(good) // 2), True),
        Case("size_zero", riff_wav(good, 2, 16000, 16, data_size=0), False),
        Case("size_odd", riff_wav(good, 2, 16000, 16, data_size=len(good) - 3), True),
        Case("truncated_half", riff_wav(good, 2, 16000, 16)[: 44 + len(good) // 2], True),
        Case("truncated_header", riff_wav(good, 2, 16000, 16)[:30], False),
        Case("rate_zero", riff_wav(good, 2, 0, 16), False),
        Case("rate_one", riff_wav(good, 2, 1, 16), False),
        Case("rate_huge", riff_wav(good, 2, 0x7FFFFFFF, 16), False),
        Case("rate_max", riff_wav(good, 2, 0xFFFFFFFF, 16), False),
        Case("channels_zero", riff_wav(good, 0, 16000, 16), False),
        Case("channels_huge", riff_wav(good, 0xFFFF, 16000, 16), False),
        Case("channels_lie_8_for_2", riff_wav(good, 8, 16000, 16, EXTENSIBLE), False),
        Case("bits_zero", riff_wav(good, 2, 16000, 0), False),
        Case("bits_odd", riff_wav(good, 2, 16000, 12), False),
        Case("bits_huge", riff_wav(good, 2, 16000, 0xFFFF), False),
        Case("float_tag_int_bits", riff_wav(good, 2, 16000, 16, FLOAT), False),
        Case("unknown_tag", riff_wav(good, 2, 16000, 16, 0x1234), False),
        Case("no_data_chunk", riff_wav(good, 2, 16000, 16)[:36], False),
        Case("garbage_after_riff", b"RIFF\xff\xff\xff\xffWAVE" + bytes(range(256)) * 40, False),
        Case("empty", b"", False),
    ]
    rng = np.random.default_rng(1)
    for i in range(6):  # random byte flips in the header
        raw = bytearray(riff_wav(good, 2, 16000, 16))
        for pos in rng.integers(8, 44, size=3):
            raw[pos] = int(rng.integers(0, 256))
        out.append(Case(f"header_flip{i}", bytes(raw), False))
    tone = speech_like(0.5, 16000, 1)
    for label, value in (("nan", np.nan), ("inf", np.inf), ("neg_inf", -np.inf)):
        spiked = tone.copy()
        spiked[::997] = value
        for fmt in ("f32", "f64"):
            out.append(Case(f"{fmt}_{label}", honest(spiked, 16000, fmt), False))
    loud = tone * 1e30  # finite but absurd floats
    out.append(Case("f32_huge_values", honest(loud, 16000, "f32"), False))
    return out
