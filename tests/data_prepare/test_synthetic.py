"""The offline talking-head set: portraits, the face square, and one rendered clip."""

from __future__ import annotations

import numpy as np
import pytest

from genhuman.data import layout
from genhuman.data.synthetic import RENDER_SIZE, example_portraits, face_square
from genhuman.errors import InputError


def test_portrait_variants_and_face_square():
    portraits = example_portraits()
    assert len(portraits) % 3 == 0 and len(portraits) >= 3  # each example: itself, mirrored, zoomed
    assert np.array_equal(portraits[1], portraits[0][:, ::-1])
    square = face_square(portraits[0])
    assert square.shape[0] == square.shape[1] <= RENDER_SIZE and square.dtype == np.uint8


@pytest.mark.parametrize("kwargs, message", [({"clips": 0}, "--clips"), ({"size": 48}, "--size must be between 64")])
def test_bad_arguments(kwargs, message, tmp_path):
    from genhuman.data.synthetic import make_synthetic_set

    with pytest.raises(InputError, match=message):
        make_synthetic_set(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # Piper's voice, the lite engine's avatar and a render: ~15 s on 2 cores
def test_one_clip_renders_and_prepares(echo_model, tmp_path):
    from genhuman.data.prepare import PrepareConfig, prepare
    from genhuman.data.synthetic import make_synthetic_set
    from genhuman.media.video_reader import read_video_info

    (path,) = make_synthetic_set(tmp_path / "videos", clips=1, size=64, progress=False)
    info = read_video_info(path)
    assert (info.width, info.height, info.fps, info.has_audio) == (64, 64, 25.0, True)
    assert 1.0 < info.duration < 6.0 and abs(info.audio_duration - info.duration) < 0.1
    report = prepare(tmp_path / "videos", tmp_path / "prepared", PrepareConfig(size=64), model=echo_model,
                     progress=False)
    (row,) = report.rows
    assert row.kept and abs(row.checks["frame_difference"]) <= layout.MAX_FRAME_MISMATCH
    assert row.checks["faces_tracked"] == row.checks["video_frames"]
