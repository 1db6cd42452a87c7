import numpy as np
import pytest
import soundfile

from genhuman.errors import InputError
from genhuman.media import load_audio
from genhuman.speech import mouth_track, synthesize, synthesize_to_file
from genhuman.speech.tts import MAX_TEXT_CHARS

SENTENCE = "The moon is bright tonight, and the stars are out."


def test_synthesize_a_sentence():
    wave, rate = synthesize(SENTENCE)
    assert rate == 22050 and wave.dtype == np.float32 and wave.ndim == 1
    seconds = len(wave) / rate
    assert 1.5 < seconds < 5.0  # ten words at a normal speaking rate
    assert 0.05 < np.abs(wave).max() <= 1.0


def test_synthesized_file_round_trips_into_an_aligned_track(tmp_path):
    path = synthesize_to_file(SENTENCE, tmp_path / "tts.wav")
    info = soundfile.info(str(path))
    assert info.samplerate == 22050 and info.channels == 1
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    tr = mouth_track(load_audio(path), text=SENTENCE)
    assert tr.source == "aligned"
    assert any(p == "M" for p, _, _ in tr.phones)


def test_bad_text_and_paths(tmp_path):
    with pytest.raises(InputError, match=r"^text is empty$"):
        synthesize("   ")
    with pytest.raises(InputError, match=r"^text has nothing to speak$"):
        synthesize("...")
    with pytest.raises(InputError, match="text is too long"):
        synthesize("a" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(InputError, match="unsupported audio file type"):
        synthesize_to_file(SENTENCE, tmp_path / "out.mp3")
    with pytest.raises(InputError, match="folder does not exist"):
        synthesize_to_file(SENTENCE, tmp_path / "missing" / "out.wav")
    assert list(tmp_path.iterdir()) == []


def test_control_characters_are_refused():
    with pytest.raises(InputError, match="text contains control characters"):
        synthesize("hello\x00world")


@pytest.mark.parametrize("text, script", [
    ("你好，世界。今天天气很好。", "CJK"),
    ("The word is 你好.", "CJK"),
    ("Привет, как дела?", "Cyrillic"),
    ("こんにちは", "hiragana"),
    ("مرحبا", "Arabic"),
])
def test_text_in_a_script_the_voice_cannot_read_is_refused_before_synthesis(monkeypatch, text, script):
    def no_voice():
        raise AssertionError("the voice must not be loaded for text it cannot read")

    monkeypatch.setattr("genhuman.speech.tts._voice", no_voice)
    with pytest.raises(InputError, match=r"^text is not in English: the voice reads Latin letters only") as info:
        synthesize(text)
    assert script in str(info.value)


def test_accented_latin_and_full_width_text_are_spoken():
    wave, rate = synthesize("Café, naïve résumé.")
    assert len(wave) / rate > 0.8
    # Full-width Latin (typed with a CJK keyboard) is read as plain letters, not spelled
    # out code by code: about as long as the ASCII sentence.
    plain, _ = synthesize("hello world 123")
    wide, _ = synthesize("ｈｅｌｌｏ ｗｏｒｌｄ １２３")
    assert abs(len(wide) - len(plain)) < 0.1 * len(plain)
