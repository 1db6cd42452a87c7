"""The CLI frame: option validation and error reporting conventions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genhuman.cli import main


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["animate", "a.png", "b.wav", "-o", "x.mp4", "--fps", "0"], "--fps: fps must be between 1 and 60, got 0"),
        (["animate", "a.png", "b.wav", "-o", "x.mp4", "--steps", "-3"], "--steps: steps must be between 1 and 200, got -3"),
        (["animate", "a.png", "b.wav", "-o", "x.mp4", "--steps", "0"], "--steps: steps must be between 1 and 200, got 0"),
        (["animate", "a.png", "b.wav", "-o", "x.mp4", "--cfg", "nan"], "--cfg: cfg must be a finite number, got nan"),
        (["animate", "a.png", "b.wav", "-o", "x.mp4", "--max-size", "abc"], "max size must be an integer, got 'abc'"),
        (["animate", "a.png", "b.wav", "-o", "x.mp4", "--engine", "nope"], "invalid choice: 'nope'"),
        (["animate", "a.png", "b.wav"], "required: -o/--output"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_output_must_be_mp4(tmp_path, capsys):
    assert main(["animate", "a.png", "b.wav", "-o", str(tmp_path / "x.avi")]) == 2
    assert capsys.readouterr().err.strip() == f"genhuman: error: output must be an .mp4 file, got '{tmp_path / 'x.avi'}'"


def test_module_entry_point_prints_version():
    out = subprocess.run([sys.executable, "-m", "genhuman", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("genhuman ")


def test_transcript_that_is_not_utf8_is_one_line(tmp_path, capsys):
    bad = tmp_path / "transcript.txt"
    bad.write_bytes(b"\xff\xfe\x00h\x00i")  # UTF-16 with a BOM
    assert main(["animate", "a.png", "b.wav", "-o", str(tmp_path / "x.mp4"), "--text-file", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == f"genhuman: error: transcript '{bad}' is not UTF-8 text"
