"""``genhuman live``: bad input gets one line and exit 2, before any server starts."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genhuman", "live", *args], capture_output=True, text=True,
                          timeout=60)


def test_a_missing_portrait_is_one_line_and_exit_2(tmp_path):
    result = run_cli(str(tmp_path / "nobody.png"), "--no-browser")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"genhuman: error: portrait not found: '{tmp_path / 'nobody.png'}'"]


def test_live_options_are_checked_from_the_one_request_model(tmp_path):
    result = run_cli("examples/astronaut.png", "--silence", "9", "--no-browser")
    assert result.returncode == 2
    assert "silence must be between 0.15 and 3.0" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_ice_server_must_be_a_stun_or_turn_url(tmp_path):
    from genhuman.errors import InputError
    from genhuman.server.settings import ServerSettings

    with pytest.raises(InputError) as refused:
        ServerSettings(data_dir=tmp_path, ice_servers=["http://example.org"]).resolve()
    assert str(refused.value) == "an ICE server must be a stun:, turn: or turns: URL, got 'http://example.org'"


@pytest.mark.parametrize("name, message", [
    ("voice.bin", "--voice takes a Piper voice's .onnx file, not 'voice.bin'"),
    ("missing.onnx", "the Piper voice file {tmp}/missing.onnx does not exist (a voice is MODEL.onnx with "
                     "MODEL.onnx.json beside it)"),
])
def test_a_bad_voice_is_one_line_and_exit_2(tmp_path, capsys, name, message):
    from genhuman.cli import main

    assert main(["live", "examples/astronaut.png", "--voice", str(tmp_path / name), "--no-browser"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"genhuman: error: {message.format(tmp=tmp_path)}"]


def test_a_voice_of_ones_own_is_what_the_avatar_speaks_with(tmp_path):
    import numpy as np

    from genhuman.live.options import LiveOptions
    from genhuman.live.sessions import LiveSessions
    from genhuman.live.voice import speak, voice_files

    model, config = voice_files()
    (tmp_path / "mine.onnx").symlink_to(model)
    (tmp_path / "mine.onnx.json").write_bytes(config.read_bytes())
    sessions = LiveSessions(LiveOptions(voice=str(tmp_path / "mine.onnx")), portraits={})
    mine = sessions.speak("Hello there.")
    assert np.array_equal(mine.samples, speak("Hello there.").samples)  # the same voice, loaded from there
    assert mine.phones
