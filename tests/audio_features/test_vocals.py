"""Vocal separation: skipped with one line when it cannot run, and the official flow (separate the
file, take the vocals stem, 16 kHz mono WAV) through a stand-in for the optional package."""

import importlib.machinery
import logging
import sys
import types
import wave

import numpy as np
import pytest

from genhuman.audio_features import vocals
from genhuman.errors import GenHumanError
from genhuman.media.audio import load_audio, save_wav

LOGGER = "genhuman.audio_features.vocals"


@pytest.fixture
def speech(tmp_path):
    path = tmp_path / "speech.wav"
    t = np.arange(16000) / 16000
    save_wav(path, 0.3 * np.sin(2 * np.pi * 220 * t))
    return path


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "pretrained_models" / "audio_separator" / "Kim_Vocal_2.onnx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"stand-in")
    return path


def _skipped(caplog, run):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = run()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 1 and lines[0].startswith("vocal separation skipped: ") and "\n" not in lines[0]
    return result, lines[0]


def test_no_model_in_the_weights_folder(speech, tmp_path, caplog):
    result, line = _skipped(caplog, lambda: vocals.separate_vocals(speech, None, tmp_path / "cache"))
    assert result is speech and "no audio_separator/Kim_Vocal_2.onnx" in line
    assert not (tmp_path / "cache").exists()


def test_package_not_installed(speech, model, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(vocals, "PACKAGE", "genhuman_no_such_separator_package")
    wave_in = load_audio(speech)
    result, line = _skipped(caplog, lambda: vocals.separate_vocals(wave_in, model, tmp_path / "cache"))
    assert result is wave_in and "audio-separator package is not installed" in line


def test_model_path_that_does_not_exist(speech, tmp_path, caplog):
    result, line = _skipped(caplog, lambda: vocals.separate_vocals(speech, tmp_path / "Kim_Vocal_2.onnx", tmp_path))
    assert result is speech and "Kim_Vocal_2.onnx' does not exist" in line


class _StubSeparator:
    """Writes a 44.1 kHz stereo 'vocals' stem (a 440 Hz tone, as long as the input) by a bare name."""

    calls: list = []
    fail = False

    def __init__(self, output_dir, output_single_stem, model_file_dir):
        self.output_dir = output_dir
        self.calls.append(("init", output_dir, output_single_stem, model_file_dir))

    def load_model(self, name):
        self.calls.append(("load", name))

    def separate(self, path):
        self.calls.append(("separate", path))
        if self.fail:
            raise RuntimeError("model data unavailable")
        seconds = len(load_audio(path)) / 16000
        t = np.arange(int(seconds * 44100)) / 44100
        tone = (0.4 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
        name = "speech_(Vocals)_Kim_Vocal_2.wav"
        with wave.open(f"{self.output_dir}/{name}", "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(44100)
            out.writeframes(np.repeat(tone, 2).tobytes())
        return [name]


@pytest.fixture
def stub(monkeypatch):
    """``audio_separator`` and ``audio_separator.separator`` as modules (the real package, if
    installed, is hidden for the test)."""
    package = types.ModuleType("audio_separator")
    package.__spec__ = importlib.machinery.ModuleSpec("audio_separator", None)
    module = types.ModuleType("audio_separator.separator")
    module.Separator = _StubSeparator
    monkeypatch.setitem(sys.modules, "audio_separator", package)
    monkeypatch.setitem(sys.modules, "audio_separator.separator", module)
    _StubSeparator.calls, _StubSeparator.fail = [], False
    return _StubSeparator


def _dominant_hz(wave_16k):
    spectrum = np.abs(np.fft.rfft(wave_16k))
    return np.argmax(spectrum) * 16000 / len(wave_16k)


def test_separated_file_is_16k_mono_vocals(speech, model, tmp_path, stub):
    out = vocals.separate_vocals(speech, model, tmp_path / "cache")
    assert out == tmp_path / "cache" / "speech_(Vocals)_Kim_Vocal_2-16k.wav"
    with wave.open(str(out)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 16000)
        assert abs(reader.getnframes() - 16000) <= 2
    result = load_audio(out)
    assert _dominant_hz(result) == pytest.approx(440, abs=2)  # the stem, not the 220 Hz input
    assert np.abs(result).max() == pytest.approx(0.4, abs=0.01)
    assert stub.calls == [("init", str(tmp_path / "cache"), "vocals", str(model.parent)),
                          ("load", "Kim_Vocal_2.onnx"), ("separate", str(speech))]


def test_separated_array_comes_back_as_an_array(model, tmp_path, stub):
    wave_in = (0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000)).astype(np.float32)
    result = vocals.separate_vocals(wave_in, model, tmp_path / "cache")
    assert isinstance(result, np.ndarray) and abs(len(result) - 8000) <= 2
    assert _dominant_hz(result) == pytest.approx(440, abs=4)
    assert stub.calls[-1] == ("separate", str(tmp_path / "cache" / "input.wav"))


def test_separator_failure_is_one_line(speech, model, tmp_path, stub):
    stub.fail = True
    with pytest.raises(GenHumanError, match="vocal separation with '.*Kim_Vocal_2.onnx' failed: model data") as e:
        vocals.separate_vocals(speech, model, tmp_path / "cache")
    assert "\n" not in str(e.value)
