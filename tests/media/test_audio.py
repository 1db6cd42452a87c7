import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.media import SAMPLE_RATE, is_silent, load_audio, save_wav

from .helpers import encode_audio, peak_frequency, sine


@pytest.mark.parametrize("suffix,codec,fmt", [
    (".wav", "pcm_s16le", None), (".flac", "flac", None), (".mp3", "libmp3lame", None),
    (".ogg", "libopus", "ogg"), (".opus", "libopus", "opus"), (".m4a", "aac", "mp4"),
])
def test_formats_decode_and_resample(tmp_path, suffix, codec, fmt):
    rate = 48000 if codec == "libopus" else 44100  # Opus only runs at 48 kHz and below
    path = encode_audio(tmp_path / f"a{suffix}", sine(440, 1.0, rate)[None], rate, codec, fmt)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) / SAMPLE_RATE - 1.0) < 0.08  # codec padding/priming only
    assert abs(peak_frequency(wave, SAMPLE_RATE) - 440) < 3  # resampling kept the pitch
    assert 0.3 < np.abs(wave).max() <= 1.0


def test_stereo_mixed_to_mono(tmp_path):
    left = sine(440, 1.0, 22050)
    stereo = np.stack([left, -left])  # opposite phase: the mono mix cancels out
    silent = load_audio(encode_audio(tmp_path / "s.wav", stereo, 22050, "pcm_s16le"))
    assert np.abs(silent).max() < 1e-3
    same = load_audio(encode_audio(tmp_path / "t.wav", np.stack([left, left]), 22050, "pcm_s16le"))
    assert abs(np.abs(same).max() - 0.5) < 0.02


def test_audio_track_of_video(tmp_path):
    path = encode_audio(tmp_path / "v.mp4", sine(300, 1.0, 44100)[None], 44100, "aac", "mp4", with_video=True)
    wave = load_audio(path)
    assert abs(peak_frequency(wave, SAMPLE_RATE) - 300) < 3


def test_example_speech(speech_path):
    wave = load_audio(speech_path)
    assert abs(len(wave) / SAMPLE_RATE - 7.0) < 0.05
    assert not is_silent(wave)


def test_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_audio(tmp_path / "none.wav")
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(InputError, match="junk.mp3"):
        load_audio(junk)
    empty = encode_audio(tmp_path / "e.wav", np.zeros((1, 100), np.float32), 16000, "pcm_s16le")
    with pytest.raises(InputError, match="empty or too short"):
        load_audio(empty)
    video_only = tmp_path / "mute.mp4"
    from genhuman.media import VideoWriter
    with VideoWriter(video_only, 25) as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(InputError, match="no audio track"):
        load_audio(video_only)
    with pytest.raises(InputError, match="too long"):
        load_audio(encode_audio(tmp_path / "l.wav", sine(200, 3.0, 16000)[None], 16000, "pcm_s16le"),
                   max_seconds=2.0)


def test_array_input_and_wav_round_trip(tmp_path):
    wave = sine(440, 0.5, SAMPLE_RATE)
    np.testing.assert_array_equal(load_audio(wave), wave)
    np.testing.assert_allclose(load_audio(np.stack([wave, wave], 1)), wave)
    save_wav(tmp_path / "sub" / "w.wav", wave)
    np.testing.assert_allclose(load_audio(tmp_path / "sub" / "w.wav"), wave, atol=1 / 16000)
    with pytest.raises(InputError, match="NaN"):
        load_audio(np.full(4000, np.nan, np.float32))


def test_is_silent():
    assert is_silent(np.zeros(1000, np.float32))
    assert is_silent(np.full(1000, 1e-4, np.float32))  # -80 dB
    assert not is_silent(np.full(1000, 1e-2, np.float32))  # -40 dB


@pytest.mark.parametrize("channels", [2, 6, 8])
def test_many_channel_wav_is_mixed_to_mono_without_crashing(tmp_path, channels):
    # PyAV 18 gives 9 planes for 8-channel planar audio and to_ndarray() segfaulted: run the
    # decode in a child process so a regression fails this test instead of killing pytest.
    import subprocess
    import sys

    import soundfile as sf

    t = np.arange(8000) / 16000
    wave = np.stack([np.sin(2 * np.pi * 220 * (c + 1) * t) * 0.1 for c in range(channels)], 1).astype(np.float32)
    path = tmp_path / "multi.wav"
    sf.write(path, wave, 16000)
    code = ("import sys, numpy as np; from genhuman.media import load_audio; "
            f"w = load_audio({str(path)!r}); np.save(sys.argv[1], w)")
    out = tmp_path / "mono.npy"
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
    mono = np.load(out)
    assert mono.shape == (8000,)
    np.testing.assert_allclose(mono, wave.mean(axis=1), atol=1e-4)


def test_probe_audio_reads_the_declared_duration_only(tmp_path):
    from genhuman.media import probe_audio, save_wav

    path = tmp_path / "three.wav"
    save_wav(path, np.zeros(3 * 16000, np.float32))
    assert probe_audio(path) == pytest.approx(3.0, rel=1e-6)
    with pytest.raises(InputError, match=r"is too long \(3 s\); the limit is 1 s"):
        probe_audio(path, max_seconds=1.0)
    (tmp_path / "junk.wav").write_bytes(b"RIFF junk that is no audio")
    with pytest.raises(InputError, match="is not a readable audio or video file"):
        probe_audio(tmp_path / "junk.wav")
    with pytest.raises(InputError, match="audio file not found"):
        probe_audio(tmp_path / "missing.wav")
