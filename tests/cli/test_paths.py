"""An output that is an input is refused before any work; path errors are input errors."""

from __future__ import annotations

import errno
import os

import pytest

import genhuman.cli.animate
from genhuman.cli import main
from genhuman.paths import path_error, shown

LONG = "x" * 300


@pytest.fixture
def files(tmp_path, monkeypatch, portrait_path, speech_path):
    """Stand-in inputs: the check runs before anything reads them."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    for name in ("face.png", "talk.mp4", "text.mp4"):
        (tmp_path / name).write_bytes(name.encode() * 10)
    (tmp_path / "link.mp4").symlink_to("talk.mp4")
    os.link(tmp_path / "talk.mp4", tmp_path / "hard.mp4")
    (tmp_path / "weights").mkdir()
    (tmp_path / "real.png").symlink_to(portrait_path)
    (tmp_path / "real.wav").symlink_to(speech_path)
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["animate", "face.png", "talk.mp4", "-o", "talk.mp4"], "output 'talk.mp4' is the input audio 'talk.mp4'"),
    (["animate", "face.png", "talk.mp4", "-o", "sub/../talk.mp4"],
     "output 'sub/../talk.mp4' is the input audio 'talk.mp4'"),
    (["animate", "face.png", "link.mp4", "-o", "talk.mp4"], "output 'talk.mp4' is the input audio 'link.mp4'"),
    (["animate", "face.png", "talk.mp4", "-o", "link.mp4"], "output 'link.mp4' is the input audio 'talk.mp4'"),
    (["animate", "face.png", "text.mp4", "-o", "hard.mp4", "--pose", "talk.mp4"],
     "output 'hard.mp4' is the pose input 'talk.mp4'"),
    (["animate", "face.png", "talk.mp4", "-o", "text.mp4", "--text-file", "text.mp4"],
     "output 'text.mp4' is the transcript 'text.mp4'"),
    (["pose", "extract", "talk.mp4", "./talk.mp4"], "output 'talk.mp4' is the input video 'talk.mp4'"),
    (["convert", "echomimic", "weights", "sub/../weights"],
     "output 'sub/../weights' is the source folder 'weights'"),
])
def test_output_that_is_an_input_is_refused(files, capsys, argv, message):
    before = {path.name: path.read_bytes() for path in files.iterdir() if path.is_file()}
    assert main(argv) == 2
    assert capsys.readouterr().err == f"genhuman: error: {message}; choose another output name\n"
    assert {path.name: path.read_bytes() for path in files.iterdir() if path.is_file()} == before


def test_a_new_output_passes_the_check(files, monkeypatch, capsys):
    """Different files go on to the job (stubbed here)."""
    ran = []
    monkeypatch.setattr("genhuman.engines.load_engine", lambda name, options: ran.append(name) or _Boom())
    assert main(["animate", "face.png", "talk.mp4", "-o", "new.mp4"]) == 2
    assert ran == ["lite"]
    assert capsys.readouterr().err == "genhuman: error: stub engine\n"


class _Boom:
    def animate(self, *args, **kwargs):
        from genhuman.errors import InputError

        raise InputError("stub engine")


@pytest.mark.parametrize("argv", [
    ["animate", "face.png", "talk.mp4", "-o", f"{LONG}.mp4"],
    ["animate", "face.png", "talk.mp4", "-o", f"{LONG}/out.mp4"],
    ["pose", "extract", "talk.mp4", LONG],
    ["pose", "render", "weights", f"{LONG}.mp4"],
    ["convert", "echomimic", "weights", LONG],
])
def test_long_output_name_is_an_input_error(files, capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("genhuman: error: file name too long: 'xxx") and err.endswith(" at most 255)\n")
    assert err.count("\n") == 1 and len(err) < 200
    assert sorted(path.name for path in files.iterdir()) == ["face.png", "hard.mp4", "link.mp4", "real.png",
                                                             "real.wav", "sub", "talk.mp4", "text.mp4", "weights"]


@pytest.mark.parametrize("argv", [
    ["animate", f"{LONG}.png", "real.wav", "-o", "out.mp4"],
    ["animate", "real.png", f"{LONG}.wav", "-o", "out.mp4"],
    ["pose", "render", LONG, "out.mp4"],
    ["pose", "extract", f"{LONG}.mp4", "out"],
    ["eval", "lipsync", f"{LONG}.mp4"],
    ["eval", "identity", f"{LONG}.png", "real.wav"],
])
def test_long_input_name_is_an_input_error(files, capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("genhuman: error: file name too long: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...xxx"), err
    assert err.count("\n") == 1 and "internal error" not in err
    assert not (files / "out.mp4").exists() and not (files / "out").exists()


def test_path_error_words_only_path_errors():
    assert path_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "a.png")) == \
        "No such file or directory: 'a.png'"
    assert path_error(OSError(errno.ENAMETOOLONG, "File name too long", "y" * 300)) == \
        f"file name too long: '{'y' * 30}...{'y' * 30}'"
    assert path_error(OSError(errno.ENOENT, "No such file or directory")) is None  # no path: not the user's
    assert path_error(OSError(errno.EIO, "Input/output error", "a.png")) is None
    assert shown("short.png") == "'short.png'"


def test_oserror_without_a_path_stays_an_internal_error(monkeypatch, capsys):
    def run(args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(genhuman.cli.animate, "run", run)
    assert main(["animate", "a.png", "b.wav", "-o", "x.mp4"]) == 1
    assert capsys.readouterr().err.startswith("genhuman: internal error: OSError: [Errno 5]")


def test_full_disk_is_one_clear_line(monkeypatch, capsys):
    def run(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out.mp4")

    monkeypatch.setattr(genhuman.cli.animate, "run", run)
    assert main(["animate", "a.png", "b.wav", "-o", "x.mp4"]) == 1
    assert capsys.readouterr().err == "genhuman: error: No space left on device; free some space and try again\n"
