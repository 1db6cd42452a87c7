from __future__ import annotations

import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.pose.format import PoseSequence, load_pose_dir, load_pose_frame, save_pose_dir


def test_round_trip_exact(pose, tmp_path):
    save_pose_dir(pose, tmp_path / "p")
    back = load_pose_dir(tmp_path / "p")
    assert len(back) == len(pose) == len(list((tmp_path / "p").glob("*.npy")))
    for name in ("body", "body_score", "hands", "hands_score", "face", "face_score"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pose, name))
    assert back.draw_params == (768, 768, 0, 768, 0, 768)


def test_files_are_the_official_dict(pose, tmp_path):
    """What the official infer.py reads: np.load(allow_pickle=True).tolist() -> this dict."""
    save_pose_dir(pose, tmp_path)
    frame = np.load(tmp_path / "3.npy", allow_pickle=True).tolist()
    assert set(frame) == {"bodies", "hands", "hands_score", "faces", "faces_score", "num", "draw_pose_params"}
    assert set(frame["bodies"]) == {"candidate", "subset", "score"}
    assert frame["bodies"]["candidate"].shape == (18, 2)
    assert frame["bodies"]["subset"].shape == frame["bodies"]["score"].shape == (1, 18)
    assert frame["hands"].shape == (2, 21, 2) and frame["hands_score"].shape == (2, 21)
    assert frame["faces"].shape == (1, 68, 2) and frame["faces_score"].shape == (1, 68)
    assert frame["num"] == 3 and frame["draw_pose_params"] == [768, 768, 0, 768, 0, 768]
    # subset: index where the score passes DWPose's 0.3 threshold, else -1
    expected = np.where(pose.body_score[3] > 0.3, np.arange(18), -1)
    np.testing.assert_array_equal(frame["bodies"]["subset"][0], expected)


def test_reading_stops_at_first_gap_like_the_official_loop(pose, tmp_path):
    save_pose_dir(pose, tmp_path)
    (tmp_path / "4.npy").unlink()
    assert len(load_pose_dir(tmp_path)) == 4


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_refuses_pickles_that_run_code(tmp_path):
    path = tmp_path / "0.npy"
    np.save(path, np.array({"x": _Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="not a valid pose file"):
        load_pose_frame(path)


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_pose_dir(tmp_path / "missing")
    with pytest.raises(InputError, match="no 0.npy"):
        load_pose_dir(tmp_path)
    np.save(tmp_path / "0.npy", np.zeros(3))
    with pytest.raises(InputError, match="plain array"):
        load_pose_dir(tmp_path)
    (tmp_path / "0.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a valid pose file"):
        load_pose_dir(tmp_path)
    with pytest.raises(InputError, match="hands has shape"):
        PoseSequence(np.zeros((2, 18, 2)), np.zeros((2, 18)), np.zeros((2, 21, 2)), np.zeros((2, 2, 21)),
                     np.zeros((2, 68, 2)), np.zeros((2, 68)))
    np.save(tmp_path / "0.npy", np.array({"hands": 1}, dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="not an EchoMimic V2 pose dict"):
        load_pose_dir(tmp_path)


def _save_frame(path, frame):
    np.save(path, np.array(frame, dtype=object), allow_pickle=True)


def test_unknown_keys_are_dropped_and_messages_name_only_the_file(pose, tmp_path):
    frame = pose.frame_dict(0)
    _save_frame(tmp_path / "0.npy", {**frame, "extra": [1, 2, 3]})
    assert set(load_pose_frame(tmp_path / "0.npy")) == set(frame)
    (tmp_path / "0.npy").write_bytes(b"\x93NUMPY\x01\x00" + b"garbage")
    with pytest.raises(InputError) as info:
        load_pose_dir(tmp_path)
    assert str(info.value).startswith("0.npy is not a valid pose file") and str(tmp_path) not in str(info.value)


@pytest.mark.parametrize("draw, message", [
    ([768, 768, 0, 768, 0], "6 whole numbers"),
    ("abcdef", "6 whole numbers"),
    ([768.5, 768, 0, 768, 0, 768], "6 whole numbers"),
    ([10**9, 768, 0, 10**9, 0, 768], "not a drawing box"),
    ([0, 768, 0, 0, 0, 768], "not a drawing box"),
    ([768, 768, 0, 700, 0, 768], "not a drawing box"),
    ([-768, 768, 768, 0, 0, 768], "not a drawing box"),
])
def test_bad_draw_params_are_input_errors(pose, tmp_path, draw, message):
    _save_frame(tmp_path / "0.npy", {**pose.frame_dict(0), "draw_pose_params": draw})
    with pytest.raises(InputError, match=message):
        load_pose_dir(tmp_path)


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e6])
def test_non_finite_or_huge_coordinates_are_input_errors(pose, tmp_path, value):
    frame = pose.frame_dict(0)
    frame["hands"][0, 3, 1] = value
    _save_frame(tmp_path / "0.npy", frame)
    with pytest.raises(InputError, match="pose hands holds values that are not finite or out of range"):
        load_pose_dir(tmp_path)


def test_frames_of_different_shapes_are_an_input_error(pose, tmp_path):
    _save_frame(tmp_path / "0.npy", pose.frame_dict(0))
    bad = pose.frame_dict(1)
    bad["bodies"]["candidate"] = bad["bodies"]["candidate"][:17]
    _save_frame(tmp_path / "1.npy", bad)
    with pytest.raises(InputError, match="differ in shape"):
        load_pose_dir(tmp_path)
