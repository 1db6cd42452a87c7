"""Audio decoding cannot crash: every channel count, rate and sample format, lying headers,
NaN/inf, damaged files and layouts PyAV crashes on; each decode loads or is one InputError."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.media import SAMPLE_RATE, AudioClip, is_silent, load_audio, open_audio
from genhuman.media import audio_decode

from .helpers import encode_audio, sine
from .wav_cases import cases, honest, speech_like

# The runner decodes one path per stdin line and prints one JSON line per result; the
# parent restarts it after the path it was on when it died, which counts as a crash.
RUNNER = r"""
import json, sys
import numpy as np
from genhuman.errors import InputError
from genhuman.media import load_audio
for line in sys.stdin:
    path = line.strip()
    print(json.dumps({"start": path}), flush=True)
    try:
        w = load_audio(path)
        out = {"ok": len(w), "finite": bool(np.isfinite(w).all()), "peak": float(np.abs(w).max())}
    except InputError as e:
        out = {"refused": str(e)}
    except BaseException as e:
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out), flush=True)
"""


def decode_all(paths: list[Path]) -> dict[str, dict]:
    results: dict[str, dict] = {}
    while len(results) < len(paths):
        rest = [p for p in paths if p.name not in results]
        done = subprocess.run([sys.executable, "-c", RUNNER], input="".join(f"{p}\n" for p in rest),
                              capture_output=True, text=True, timeout=120)
        current = None
        for line in done.stdout.splitlines():
            record = json.loads(line)
            if "start" in record:
                current = Path(record["start"]).name
            else:
                results[current] = record
                current = None
        if current is not None:
            results[current] = {"crash": done.returncode}
        elif len(results) < len(paths):
            results[rest[0].name] = {"crash": done.returncode, "stderr": done.stderr[-300:]}
    return results


def pyav_cases(folder: Path) -> dict[str, bool]:
    """Files made by PyAV's encoders: planar (AAC fltp) and many-channel layouts; the AIFF and
    CAF 7.1 ones have the custom-order layout PyAV 18 double-frees. name -> must decode."""
    import av

    made = {}
    for name, codec, fmt, layout, rate, valid in [
        ("aac71.m4a", "aac", "mp4", "7.1", 48000, True),
        ("aac16.m4a", "aac", "mp4", "hexadecagonal", 48000, True),
        ("opus71.ogg", "libopus", "ogg", "7.1", 48000, True),
        ("flac71.flac", "flac", None, "7.1", 44100, True),
        ("f64_71.aiff", "pcm_f64be", "aiff", "7.1", 22050, False),
        ("s16_71.caf", "pcm_s16le", "caf", "7.1", 22050, False),
    ]:
        channels = av.AudioLayout(layout).nb_channels
        encode_multi(folder / name, speech_like(0.5, rate, channels).astype(np.float32), rate, codec, fmt, layout)
        made[name] = valid
    return made


def encode_multi(path: Path, samples: np.ndarray, rate: int, codec: str, fmt, layout: str) -> None:
    from fractions import Fraction

    import av

    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples.reshape(1, -1)), format="flt", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=rate)
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_fuzz_every_file_decodes_or_is_refused_never_crashes(tmp_path):
    table = {case.write(tmp_path).name: case.valid for case in cases()}
    table.update(pyav_cases(tmp_path))
    results = decode_all([tmp_path / name for name in table])
    crashed = {n: r for n, r in results.items() if "crash" in r or "error" in r}
    loaded = [n for n, r in results.items() if "ok" in r]
    refused = [n for n, r in results.items() if "refused" in r]
    print(f"\nfuzz: tried {len(results)}, loaded {len(loaded)}, refused {len(refused)}, crashed {len(crashed)}")
    assert crashed == {}
    assert len(results) == len(table) == len(loaded) + len(refused)
    must_load = {n for n, valid in table.items() if valid}
    assert must_load - set(loaded) == set()
    for name in loaded:
        assert results[name]["finite"] and results[name]["peak"] <= 1.0, name
    for name in refused:
        message = results[name]["refused"]
        assert "\n" not in message and name in message, (name, message)
    # the PyAV double-free layouts are refused by the child decoder, the process lives on
    assert "could not be decoded" in results["f64_71.aiff"]["refused"]
    assert "could not be decoded" in results["s16_71.caf"]["refused"]


@pytest.mark.parametrize("channels", [1, 8, 64])
def test_channels_are_averaged(tmp_path, channels):
    samples = speech_like(0.25, 16000, channels)
    path = tmp_path / "c.wav"
    path.write_bytes(honest(samples, 16000, "f32"))
    np.testing.assert_allclose(load_audio(path), samples.astype(np.float32).mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("fmt,step", [("u8", 1 / 127), ("s16", 1 / 32767), ("s24", 1e-6), ("s32", 1e-6),
                                      ("f32", 1e-6), ("f64", 1e-6)])
def test_sample_formats_decode_to_the_same_wave(tmp_path, fmt, step):
    samples = speech_like(0.25, 16000, 2)
    path = tmp_path / f"{fmt}.wav"
    path.write_bytes(honest(samples, 16000, fmt))
    # one quantisation step, plus the 127 vs 128 (32767 vs 32768) full-scale convention
    np.testing.assert_allclose(load_audio(path), samples.mean(axis=1), atol=1.5 * step)


@pytest.mark.parametrize("rate", [8000, 11025, 44101, 384000])
def test_odd_and_extreme_rates_keep_duration_and_pitch(tmp_path, rate):
    path = tmp_path / "r.wav"
    path.write_bytes(honest(sine(440, 0.5, rate)[:, None].astype(np.float64), rate, "s16"))
    wave = load_audio(path)
    assert abs(len(wave) - SAMPLE_RATE // 2) <= 2
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(wave) - 440) < 4


def test_lying_headers(tmp_path):
    from .wav_cases import encode_samples, riff_wav

    good = encode_samples(speech_like(0.5, 16000, 2), "s16")  # 8000 frames
    cases_ = {"larger": (len(good) * 50, 8000), "smaller": (len(good) // 2, 4000)}
    for label, (size, expected) in cases_.items():
        path = tmp_path / f"{label}.wav"
        path.write_bytes(riff_wav(good, 2, 16000, 16, data_size=size))
        assert len(load_audio(path)) == expected, label
    path = tmp_path / "rate.wav"
    path.write_bytes(riff_wav(good, 2, 1, 16))
    with pytest.raises(InputError, match=r"rate.wav' declares a sample rate of 1 Hz; supported: 4,000-768,000 Hz"):
        load_audio(path)
    path.write_bytes(riff_wav(good, 2, 0x7FFFFFFF, 16))
    with pytest.raises(InputError, match="declares a sample rate of 2147483647 Hz"):
        load_audio(path)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_float_samples_are_refused(tmp_path, value):
    samples = speech_like(0.5, 16000, 1)
    samples[100] = value
    path = tmp_path / "n.wav"
    path.write_bytes(honest(samples, 16000, "f32"))
    with pytest.raises(InputError, match=r"^audio '.*n.wav' contains NaN or infinite samples$"):
        load_audio(path)


def test_child_decoder_gives_the_in_process_samples(tmp_path):
    path = encode_audio(tmp_path / "a.m4a", sine(300, 1.0, 44100)[None], 44100, "aac", "mp4")
    with audio_decode.open_container(path, "a") as container:
        assert not audio_decode.safe_in_process(container)
        direct = np.concatenate(list(audio_decode.decode(container, SAMPLE_RATE, 60.0, "a")))
    pieces: list[np.ndarray] = []
    audio_decode.decode_in_child(path, SAMPLE_RATE, 60.0, "a", pieces.append)
    np.testing.assert_array_equal(np.concatenate(pieces), direct)
    np.testing.assert_array_equal(load_audio(path), direct)


def test_duration_limit_from_the_environment(tmp_path, monkeypatch):
    path = encode_audio(tmp_path / "l.wav", sine(200, 3.0, 16000)[None], 16000, "pcm_s16le")
    monkeypatch.setenv("GENHUMAN_MAX_AUDIO_SECONDS", "2")
    with pytest.raises(InputError, match="too long.*the limit is 2 s"):
        load_audio(path)
    assert len(load_audio(path, max_seconds=4.0)) == 48000  # the argument wins
    monkeypatch.setenv("GENHUMAN_MAX_AUDIO_SECONDS", "lots")
    with pytest.raises(InputError, match="^GENHUMAN_MAX_AUDIO_SECONDS must be a positive number, got 'lots'$"):
        load_audio(path)


def test_audio_clip_holds_samples_outside_memory(tmp_path):
    wave = speech_like(3.0, 16000, 1)[:, 0].astype(np.float32)
    path = tmp_path / "w.wav"
    path.write_bytes(honest(wave[:, None].astype(np.float64), 16000, "f32"))
    with open_audio(path) as clip:
        assert isinstance(clip, AudioClip) and len(clip) == 48000 and clip.seconds == 3.0
        np.testing.assert_array_equal(clip.to_array(), load_audio(path))
        np.testing.assert_array_equal(clip[100:20000], wave[100:20000])
        np.testing.assert_array_equal(clip[47990:60000], wave[47990:])
        assert [len(c) for c in clip.chunks(1.25)] == [20000, 20000, 8000]
        np.testing.assert_array_equal(np.concatenate(list(clip.chunks(0.7))), wave)
        assert clip.peak == float(np.abs(wave).max())
        np.testing.assert_allclose(clip.rms, np.sqrt(np.mean(wave.astype(np.float64) ** 2)), rtol=1e-9)
        assert is_silent(clip) is False
        with pytest.raises(TypeError, match="contiguous slices"):
            clip[::2]
    silent = AudioClip.from_array(np.zeros(16000, np.float32))
    assert is_silent(silent) and len(silent) == 16000
    silent.close()
