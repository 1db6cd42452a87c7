"""``genhuman convert`` and ``genhuman download`` from the command line."""

import time

import torch

from genhuman.checkpoints import load_echomimic
from genhuman.cli import main


def test_convert_command_fp16(official, tmp_path, capsys):
    assert main(["convert", "echomimic", str(official), str(tmp_path / "out"), "--fp16"]) == 0
    assert "converted echomimic (audio)" in capsys.readouterr().out
    c = load_echomimic(tmp_path / "out", dtype=torch.float16)
    assert c.variant.name == "audio" and c.denoising_unet.conv_out.weight.dtype == torch.float16


def test_convert_command_errors_in_one_line(official, tmp_path, capsys):
    assert main(["convert", "echomimic", str(official), str(tmp_path / "x"), "--variant", "v2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "genhuman: error: variant 'v2' is not one of echomimic's: audio, acc, pose, pose_acc")
    assert main(["convert", "echomimic", str(official), str(tmp_path / "x"), "--variant", "pose"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing denoising_unet_pose.pth" in err
    assert not (tmp_path / "x").exists()


def test_download_fails_fast_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there: refused at once
    start = time.monotonic()
    assert main(["download", "echomimic", "--dir", str(tmp_path / "w")]) == 1
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert err.startswith("genhuman: error: cannot reach 127.0.0.1") and err.count("\n") == 1
    assert not (tmp_path / "w").exists()
