"""Bad inputs give one line and exit 2 with nothing written; the Hallo family's layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from genhuman.cli import main
from genhuman.data import layout
from genhuman.data.prepare import PrepareConfig, prepare
from tests.data_prepare.conftest import SIZE, SOURCE


def run_cli(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["data", "prepare", *args])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("case, message", [
    ("missing", "videos folder not found"),
    ("empty", "no videos in"),
    ("family", "unknown family 'sadtalker'; choose one of: echomimic, hallo"),
    ("size", "--size must be a multiple of 8 of at least 32 for echomimic, got 50"),
    ("hallo_size", "--size must be a multiple of 64 of at least 32 for hallo, got 96"),
    ("no_model", "--audio-model is required"),
    ("bad_model", "audio model not found"),
    ("not_whisper", "no whisper encoder in"),
])
def test_bad_input_is_one_line_exit_2(case, message, videos, echo_weights, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no video here")
    out = tmp_path / "out"
    args = {"missing": [str(tmp_path / "nope"), str(out), "--audio-model", str(echo_weights)],
            "empty": [str(empty), str(out), "--audio-model", str(echo_weights)],
            "family": [str(videos), str(out), "--family", "sadtalker"],
            "size": [str(videos), str(out), "--size", "50"],
            "hallo_size": [str(videos), str(out), "--family", "hallo", "--size", "96"],
            "no_model": [str(videos), str(out), "--size", str(SIZE)],
            "bad_model": [str(videos), str(out), "--audio-model", str(tmp_path / "nowhere")],
            "not_whisper": [str(videos), str(out), "--audio-model", str(empty)]}[case]
    code, lines = run_cli(capsys, *args)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("genhuman: error: ") and message in lines[0]
    assert not out.exists()  # nothing written


def test_bad_worker_count_is_one_line(videos, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "prepare", str(videos), str(tmp_path / "out"), "--workers", "0"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1 and "--workers" in lines[0]


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["data", "prepare", "--help"])
    text = capsys.readouterr().out
    for option in ("--family", "--size", "--audio-model", "--workers", "videos_dir"):
        assert option in text


@pytest.fixture(scope="module")
def hallo_folder(tmp_path_factory) -> Path:
    """A Hallo pretrained_models/ folder with only what preparation reads: tiny wav2vec2 + face analysis."""
    from genhuman.checkpoints.layout import FACE_DETECTOR, FACE_RECOGNIZER, WAV2VEC_DIR
    from genhuman.checkpoints.tiny import save_tiny_wav2vec
    from genhuman.checkpoints.tiny_onnx import save_tiny_face_analysis

    folder = tmp_path_factory.mktemp("hallo") / "pretrained_models"
    save_tiny_wav2vec(folder / WAV2VEC_DIR)
    save_tiny_face_analysis(folder, FACE_DETECTOR, FACE_RECOGNIZER, 0)
    return folder


def test_hallo_layout(hallo_folder, videos, tmp_path):
    from genhuman.audio_features.wav2vec import wav2vec_features
    from genhuman.data.features import load_audio_model
    from genhuman.media import load_audio

    sub = tmp_path / "videos"
    sub.mkdir()
    shutil.copy2(videos / "a.mp4", sub / "a.mp4")
    model = load_audio_model("hallo", hallo_folder)
    report = prepare(sub, tmp_path / "out", PrepareConfig(family="hallo", size=SIZE), model=model, progress=False)
    (row,) = report.rows
    assert row.kept and row.family == "hallo"
    clip = layout.PreparedClip(layout.clip_dir(tmp_path / "out", "a"))
    t = row.num_frames
    assert clip.meta["crop_box"] == [0, 0, SOURCE, SOURCE]  # a square source is used whole (Hallo)
    assert clip.frames.shape == (t, SIZE, SIZE, 3)
    features, frames = wav2vec_features(model.encoder, load_audio(row.source))
    assert row.checks["audio_frames"] == frames
    assert clip.features.shape == (t, model.encoder.config.num_hidden_layers, model.encoder.config.hidden_size)
    assert torch.equal(clip.features, features[:t])
    embedding = clip.face_embedding
    assert embedding is not None and embedding.shape == (512,) and embedding.dtype == np.float32
    assert row.checks["face_embedding"] == bool(np.any(embedding))
    # the face mask is Hallo's silhouette box of the frame's landmarks (the box saved with it)
    x0, y0, x1, y1 = clip.masks[layout.BOXES_KEY][0]
    ys, xs = np.nonzero(clip.masks["face"][0])
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (max(0, x0), max(0, y0), min(SIZE, x1), min(SIZE, y1))
