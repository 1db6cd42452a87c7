"""A command that needs an optional extra that is not installed says which one, in one line."""

from __future__ import annotations

import pytest

import genhuman.cli.animate
from genhuman.cli import main


@pytest.mark.parametrize("module, extra", [("torch", "diffusion"), ("uvicorn", "server"),
                                           ("diffusers.models", "diffusion")])
def test_missing_extra_is_named(monkeypatch, capsys, module, extra):
    def run(args):
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    monkeypatch.setattr(genhuman.cli.animate, "run", run)
    assert main(["animate", "a.png", "b.wav", "-o", "x.mp4"]) == 1
    err = capsys.readouterr().err
    assert err == (f"genhuman: error: No module named {module!r}: 'animate' needs genhuman's {extra} extra "
                   f"(pip install 'genhuman[{extra}]')\n")


def test_other_missing_module_is_an_internal_error(monkeypatch, capsys):
    def run(args):
        raise ModuleNotFoundError("No module named 'nope'", name="nope")

    monkeypatch.setattr(genhuman.cli.animate, "run", run)
    assert main(["animate", "a.png", "b.wav", "-o", "x.mp4"]) == 1
    assert capsys.readouterr().err.startswith("genhuman: internal error: ModuleNotFoundError")
